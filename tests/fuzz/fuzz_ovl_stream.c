/*
 * fuzz_ovl_stream.c: libFuzzer target for the TCP de-framer (ovl_stream.h).
 *
 * Input: byte 0 picks the buffer size ((b0 + 1) * 16 bytes, 16..4096),
 * byte 1 seeds the sequence of read sizes, the rest is the byte stream.
 * The stream is fed in reads of varying size, as a socket would deliver
 * it, and the messages that come out are compared with a straightforward
 * reference parse of the whole input at once: same messages, same bytes,
 * same failure point. Also checked: every message fits the buffer, lies
 * inside the input or the buffer, and a failed stream stays failed.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_stream.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ovl_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            abort();                                                          \
    } while (0)

/* Reference: walks the whole buffer; returns the offset of the n-th
 * message's body (and its length), or SIZE_MAX when there is none, with
 * *failed set if an oversize prefix comes first. */
static size_t ref_nth(const uint8_t *s, size_t len, size_t cap, size_t n,
                      size_t *msg_len, bool *failed)
{
    size_t off = 0, seen = 0;

    *failed = false;
    while (off + 2 <= len) {
        size_t l = (size_t)s[off] << 8 | s[off + 1];
        if (l > cap) {
            *failed = true;
            return SIZE_MAX;
        }
        if (off + 2 + l > len)
            return SIZE_MAX;
        if (l > 0) {
            if (seen == n) {
                *msg_len = l;
                return off + 2;
            }
            seen++;
        }
        off += 2 + l;
    }
    return SIZE_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[4096];
    const uint8_t *stream, *msg;
    struct ovl_stream st;
    size_t cap, len, off = 0, n = 0, used, msg_len, ref_len;
    unsigned step;
    bool failed = false, ref_failed;
    int rc;

    if (size < 2)
        return 0;
    cap = ((size_t)data[0] + 1) * 16;
    step = data[1];
    stream = data + 2;
    len = size - 2;
    CHECK(ovl_stream_init(&st, buf, cap) == 0);

    while (off < len) {
        size_t chunk = 1 + (step = step * 33 + 7) % 97;
        if (chunk > len - off)
            chunk = len - off;
        size_t end = off + chunk;
        while (off < end) {
            rc = ovl_stream_feed(&st, stream + off, end - off, &used, &msg,
                                 &msg_len);
            CHECK(used <= end - off);
            off += used;
            if (rc == -EMSGSIZE) {
                failed = true;
                break;
            }
            CHECK(rc == 0 || rc == 1);
            if (rc == 0) {
                CHECK(off == end);
                continue;
            }
            /* A message: bounded, in the input or in the buffer, and
             * equal to the reference's n-th message. */
            CHECK(msg_len > 0 && msg_len <= cap);
            CHECK((msg >= stream && msg + msg_len <= stream + len) ||
                  (msg >= buf && msg + msg_len <= buf + cap));
            size_t at = ref_nth(stream, len, cap, n, &ref_len, &ref_failed);
            CHECK(at != SIZE_MAX && ref_len == msg_len);
            CHECK(memcmp(stream + at, msg, msg_len) == 0);
            n++;
        }
        if (failed)
            break;
    }
    /* No message was missed, and failure happens exactly where the
     * reference says. */
    CHECK(ref_nth(stream, len, cap, n, &ref_len, &ref_failed) == SIZE_MAX);
    CHECK(failed == ref_failed);
    CHECK(st.messages == n);
    if (failed) {
        rc = ovl_stream_feed(&st, stream, len, &used, &msg, &msg_len);
        CHECK(rc == -EMSGSIZE && used == 0);
    }
    return 0;
}
