vcl 4.1;
# Varnish in front of SEVERAL imgrelay instances sharing one S3 bucket (docs/deploy.md; tested with varnishd 7.1 in
# test/scale-out.test.ts). What it adds to default.vcl:
#   - a round-robin director over the instances, each probed on GET /readyz: an instance that drains (SIGTERM) fails
#     /readyz at once and leaves the rotation after `.threshold` failed probes, before its listener closes
#     (IMGRELAY_DRAIN_DELAY_MS must outlast `.interval` x `.threshold`);
#   - retries: a GET/HEAD whose backend fetch fails (connection refused or reset, timeout, no response) is sent again,
#     up to 3 times, and the director picks the next healthy instance each time. Only fetches that failed before any
#     response header arrived are retried; nothing else is (a POST is passed through and never retried).
# The PURGE/BAN protocol, Accept buckets and TTLs are imgrelay.vcl's, shared with default.vcl. Each instance purges this
# Varnish itself (IMGRELAY_CDN_PURGE=varnish+http://<varnish>:6081): list every instance's address in `purgers`.
#
# Edit: one backend per instance (names and hosts), the `purgers` ACL. Probe values are for production: an instance
# is out after ~2 s of failed readiness and back after ~2 s of good answers.

import directors;

probe imgrelay_ready {
    .url = "/readyz";
    .timeout = 1s;
    .interval = 1s;
    .window = 3;
    .threshold = 2;
    # Starts as healthy so that a restarted Varnish serves at once (a dead instance is caught by the retries).
    .initial = 2;
}

backend imgrelay1 {
    .host = "imgrelay-1";
    .port = "8080";
    .probe = imgrelay_ready;
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

backend imgrelay2 {
    .host = "imgrelay-2";
    .port = "8080";
    .probe = imgrelay_ready;
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

backend imgrelay3 {
    .host = "imgrelay-3";
    .port = "8080";
    .probe = imgrelay_ready;
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

acl purgers {
    "127.0.0.1";
    "::1";
    # The instances' private network, e.g.:
    # "10.0.0.0"/8;
}

sub vcl_init {
    new imgrelay_cluster = directors.round_robin();
    imgrelay_cluster.add_backend(imgrelay1);
    imgrelay_cluster.add_backend(imgrelay2);
    imgrelay_cluster.add_backend(imgrelay3);
}

sub vcl_recv {
    # Before imgrelay.vcl's vcl_recv (Varnish runs same-named subs in the order they appear), which returns.
    set req.backend_hint = imgrelay_cluster.backend();
}

include "./imgrelay.vcl";

sub vcl_backend_error {
    # A refused or cut connection (an instance stopping or restarting) is not the client's problem: the director
    # resolves again on each retry, so the next attempt goes to the next healthy instance.
    if ((bereq.method == "GET" || bereq.method == "HEAD") && bereq.retries < 3) {
        return (retry);
    }
    set beresp.http.Cache-Control = "no-store";
}
