vcl 4.1;
# The imgrelay part of every VCL here, included by default.vcl (one backend) and cluster.vcl (several): purges and
# bans from imgrelay (the `purgers` ACL is defined by the including file, next to the backends it lists), the Accept
# buckets, TTL and grace, and the X-Edge-Cache header. The including file picks the backend; this file never does.
#
#   PURGE <path>              with the public URL's Host: removes that URL (every Accept variant of it)
#   BAN / + X-Purge-Tags: k…  bans every object whose Surrogate-Key holds one of the keys (space-separated)
#   BAN / + X-Purge-All: true bans everything
# imgrelay tags each image with `Surrogate-Key: src-<hash of the source> host-<source host>`, so a source's every
# variant and URL form goes with one ban. Bans test only obj.* fields, so the ban lurker clears them in the background.

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Purging is not allowed from this address"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Banning is not allowed from this address"));
        }
        call imgrelay_ban;
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Images never depend on cookies or credentials; dropping them keeps responses cacheable.
    unset req.http.Cookie;
    # imgrelay answers `Vary: Accept` only for format=auto, and then only three buckets matter (AVIF, WebP, other):
    # normalise Accept to them so browsers' many Accept strings share three cached variants.
    if (req.http.Accept ~ "image/avif") {
        set req.http.Accept = "image/avif,image/webp,image/*";
    } elsif (req.http.Accept ~ "image/webp") {
        set req.http.Accept = "image/webp,image/*";
    } else {
        set req.http.Accept = "image/*";
    }
    return (hash);
}

sub imgrelay_ban {
    if (req.http.X-Purge-All == "true") {
        ban("obj.status != 0");
        return (synth(200, "Banned everything"));
    }
    # Keys are letters, digits and . _ : - [ ] (imgrelay sends nothing else): refuse anything that could be a regex.
    if (req.http.X-Purge-Tags !~ "^[A-Za-z0-9._:\[\] ,-]+$") {
        return (synth(400, "X-Purge-Tags: expected space-separated surrogate keys"));
    }
    # "a.b c" -> (^| )(a\.b|c)( |$): whole keys only, with the regex characters among them escaped.
    set req.http.X-Purge-Regex = regsuball(regsuball(regsub(req.http.X-Purge-Tags, "^[ ,]+|[ ,]+$", ""),
        "([.\[\]])", "\\\1"), "[ ,]+", "|");
    ban("obj.http.Surrogate-Key ~ (^|\s)(" + req.http.X-Purge-Regex + ")(\s|$)");
    return (synth(200, "Banned"));
}

sub vcl_backend_response {
    # Errors are not worth keeping beyond what imgrelay allows (it sends no-store for them; 404s briefly).
    if (beresp.status >= 500) {
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    # imgrelay's Cache-Control follows each entry's freshness and its Age says how much of it is used: Varnish's
    # TTL is s-maxage - Age (its built-in rule), so an image lives here no longer than imgrelay would serve it fresh.
    # Serve stale while refreshing, and while imgrelay is down, within what its Cache-Control grants
    # (Varnish reads stale-while-revalidate into grace; keep a floor for stale-if-error).
    if (beresp.grace < 1h) {
        set beresp.grace = 1h;
    }
}

sub vcl_deliver {
    # Says whether this edge answered from its cache (X-Varnish also carries two ids on a hit).
    if (obj.hits > 0) {
        set resp.http.X-Edge-Cache = "HIT";
    } else {
        set resp.http.X-Edge-Cache = "MISS";
    }
    unset resp.http.X-Purge-Regex;
}

sub vcl_synth {
    set resp.http.Cache-Control = "no-store";
}
