vcl 4.1;
# Varnish in front of ONE imgrelay (tested with varnishd 7.1, Debian 12); several instances: cluster.vcl.
# imgrelay purges it through IMGRELAY_CDN_PURGE (e.g. `varnish+http://127.0.0.1:6081`); the PURGE/BAN protocol,
# Accept buckets and TTLs live in imgrelay.vcl (included below, from the same directory as this file).
#
# Edit the backend and the `purgers` ACL for your deployment (only the hosts running imgrelay need to purge).

backend imgrelay {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 5s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

acl purgers {
    "127.0.0.1";
    "::1";
}

include "./imgrelay.vcl";
