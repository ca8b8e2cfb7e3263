/*
 * fuzz_brg_join.c: libFuzzer target for the secure leg's join payloads
 * (brg_join.h), which arrive from unauthenticated-until-joined peers inside
 * the handshake: the request and verdict decoders.
 *
 * Checks that a request that decodes re-encodes to one that decodes to the
 * same fields (round trip), and likewise for a verdict.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays the seeds in tests/fuzz/corpus/brg_join.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brg_join.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[BRG_JOIN_REQ_PAD * 2];
    struct brg_join_req req, req2;
    struct brg_join_resp resp, resp2;
    int n;

    if (brg_join_req_decode(&req, data, size) == 0) {
        n = brg_join_req_encode(&req, buf, sizeof(buf));
        /* Fields that fit the wire limits always re-encode within the pad,
         * except for long strings full of escapes: then -EMSGSIZE is fine. */
        if (n > 0) {
            if (brg_join_req_decode(&req2, buf, (size_t)n) != 0 ||
                strcmp(req.room, req2.room) || strcmp(req.pin, req2.pin) ||
                strcmp(req.name, req2.name) || req.rate != req2.rate)
                abort();
        }
    }
    if (brg_join_resp_decode(&resp, data, size) == 0) {
        n = brg_join_resp_encode(&resp, buf, sizeof(buf));
        if (n > 0 && (brg_join_resp_decode(&resp2, buf, (size_t)n) != 0 ||
                      resp.ok != resp2.ok || resp.id != resp2.id ||
                      strcmp(resp.error, resp2.error)))
            abort();
    }
    return 0;
}
