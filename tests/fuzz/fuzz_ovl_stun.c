/*
 * fuzz_ovl_stun.c: libFuzzer target for the STUN code the bridge exposes on
 * its media port (ovl_stun.h): ovl_stun_parse, the Binding server and the
 * client's response parser, on arbitrary datagrams.
 *
 * Beyond "no crash, no sanitizer report" it checks the server's promise
 * never to amplify: an answer fits OVL_STUN_RESP_MAX and, when there is one,
 * it parses as a STUN success or error response.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays the seeds in tests/fuzz/corpus/ovl_stun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ovl_stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ovl_stun_server srv = {.mapped_address = true, .software = "fuzz"};
    struct ovl_stun_addr src = {.family = OVL_STUN_FAMILY_IPV4, .port = 40000,
                                .ip = {127, 0, 0, 1}};
    uint8_t out[OVL_STUN_RESP_MAX + 64], txid[OVL_STUN_TXID_LEN] = {0};
    enum ovl_stun_drop drop = OVL_STUN_DROP_NONE;
    struct ovl_stun_result result;
    struct ovl_stun_reply reply;
    struct ovl_stun_msg m;

    ovl_stun_parse(&m, data, size, &drop);
    memset(&reply, 0, sizeof(reply));
    if (ovl_stun_server_handle(&srv, data, size, &src, NULL, out, sizeof(out), &reply,
                               &drop) == 0) {
        if (reply.len == 0 || reply.len > OVL_STUN_RESP_MAX)
            abort();
        if (ovl_stun_parse(&m, out, reply.len, &drop) != 0)
            abort();
    }
    if (size >= 8 + OVL_STUN_TXID_LEN)
        memcpy(txid, data + 8, OVL_STUN_TXID_LEN);
    ovl_stun_response_parse(&result, data, size, txid, &drop);
    return 0;
}
