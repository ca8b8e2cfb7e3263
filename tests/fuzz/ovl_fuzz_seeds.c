/*
 * ovl_fuzz_seeds.c: writes the seed corpora of fuzz_ovl_wire and
 * fuzz_ovl_stream. Seeds must be valid messages for the fuzz target's
 * deterministic state (fuzz_ovl_common.h), which is why they are generated
 * rather than captured. Run after changing the wire format or that state:
 *
 *   ./build/tests/ovl_fuzz_seeds tests/fuzz/corpus
 *
 * and commit the result. Each seed is rebuilt from a fresh fz_setup(), so
 * no seed depends on another.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_ovl_common.h"
#include "ovl_stream.h"

static const char *base;
static struct fz f;
static uint8_t buf[OVL_WIRE_MAX_MSG + 1];

static void die(const char *what)
{
    fprintf(stderr, "ovl_fuzz_seeds: %s\n", what);
    exit(1);
}

static void setup(void)
{
    fz_teardown(&f);
    if (fz_setup(&f) != 0)
        die("fz_setup failed");
}

static void put(const char *corpus, const char *name, uint8_t first,
                const uint8_t *msg, size_t len)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", base, corpus);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", base, corpus, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(&first, 1, 1, fp) != 1 ||
        (len && fwrite(msg, 1, len, fp) != len) || fclose(fp) != 0)
        die(path);
}

static void wire(const char *name, uint8_t flags, const uint8_t *msg,
                 size_t len)
{
    put("ovl_wire", name, flags, msg, len);
}

/* A message from @s, sealed at @now. */
static size_t data_from(struct ovl_session *s, const char *text, uint64_t now)
{
    size_t len;

    if (ovl_session_seal(s, (const uint8_t *)text, strlen(text), now, buf,
                         sizeof(buf), &len))
        die("seal");
    return len;
}

/* B's answer to the rekey INIT: accepted, rejected, or a cookie. */
static size_t b_answer(int how)
{
    struct ovl_rx rx;
    size_t len;

    setup();
    ovl_endpoint_set_under_load(&f.b, how == 2);
    if (fz_recv(&f, &f.b, f.rekey_init, f.rekey_init_len, fz_addr_c, FZ_T1,
                &rx))
        die("rekey INIT refused");
    if (how == 2) {
        if (rx.kind != OVL_RX_REPLY)
            die("no cookie");
        memcpy(buf, rx.reply, rx.reply_len);
        return rx.reply_len;
    }
    if (rx.kind != OVL_RX_HANDSHAKE)
        die("no handshake");
    if (how == 0 ? ovl_hs_responder_accept(&f.hs, &f.bs,
                                           (const uint8_t *)"rekeyed", 7,
                                           FZ_T1, buf, sizeof(buf), &len)
                 : ovl_hs_responder_reject(&f.hs, &f.b,
                                           (const uint8_t *)"no", 2, buf,
                                           sizeof(buf), &len))
        die("verdict");
    return len;
}

static void wire_seeds(void)
{
    struct ovl_identity id_x;
    struct ovl_rng_seeded rs_x;
    struct ovl_endpoint x;
    struct ovl_session xs;
    struct ovl_rx rx;
    size_t len;
    static const uint8_t stun[20] = {0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42};
    static const uint8_t rtp[12] = {0x80, 111, 0, 1};

    setup();
    len = data_from(&f.cs, "media from client", FZ_T1);
    wire("b_data", 0x00, buf, len);
    wire("b_data_30ms", 0x20, buf, len);
    wire("b_data_30s", 0x40, buf, len);
    wire("b_data_expired", 0x60, buf, len);
    wire("b_data_roaming", 0x08, buf, len);
    wire("b_data_stream", 0x04, buf, len);
    len = data_from(&f.cs, "", FZ_T1);
    wire("b_keepalive", 0x00, buf, len);
    len = data_from(&f.bs, "mix for client", FZ_T1);
    wire("c_data", 0x01, buf, len);

    setup();
    wire("b_rekey_init_accept", 0x10, f.rekey_init, f.rekey_init_len);
    wire("b_rekey_init_reject", 0x00, f.rekey_init, f.rekey_init_len);
    wire("b_rekey_init_under_load", 0x02, f.rekey_init, f.rekey_init_len);
    wire("b_rekey_init_stream_under_load", 0x16, f.rekey_init,
         f.rekey_init_len);
    wire("c_init_unexpected", 0x01, f.rekey_init, f.rekey_init_len);
    wire("b_rekey_init_mac1fix", 0x90, f.rekey_init, f.rekey_init_len);
    wire("b_keyreq", 0x00, f.keyreq, sizeof(f.keyreq));

    len = b_answer(0);
    wire("c_resp_accept", 0x01, buf, len);
    wire("c_resp_accept_mac1fix", 0x81, buf, len);
    len = b_answer(1);
    wire("c_resp_reject", 0x01, buf, len);
    len = b_answer(2);
    wire("c_cookie", 0x01, buf, len);

    setup();
    if (fz_recv(&f, &f.b, f.keyreq, sizeof(f.keyreq), fz_addr_c, FZ_T1, &rx) ||
        rx.kind != OVL_RX_REPLY)
        die("key reply");
    wire("c_keyreply", 0x01, rx.reply, rx.reply_len);

    /* A newcomer's INIT (fresh identity), with an app payload. */
    setup();
    if (fz_endpoint(&x, &id_x, &rs_x, 0xD0, false) ||
        ovl_session_init(&xs, &x, f.id_b.ed_pk) ||
        ovl_session_connect(&xs, fz_addr_b, 6, false,
                            (const uint8_t *)"{\"room\":\"r1\",\"pin\":\"42\"}",
                            24, FZ_WALL0 + FZ_T1, FZ_T1, buf, sizeof(buf),
                            &len))
        die("newcomer");
    wire("b_init_newcomer_accept", 0x18, buf, len);
    wire("b_init_newcomer_reject", 0x08, buf, len);
    ovl_session_close(&xs);
    ovl_endpoint_close(&x);

    wire("b_stun", 0x00, stun, sizeof(stun));
    wire("b_rtp", 0x00, rtp, sizeof(rtp));
    wire("b_empty", 0x00, NULL, 0);
    memcpy(buf, f.rekey_init, f.rekey_init_len);
    buf[1] = 2;
    wire("b_bad_version", 0x00, buf, f.rekey_init_len);
    wire("b_truncated_init", 0x00, f.rekey_init, OVL_INIT_MIN - 1);
}

static void stream_put(const char *name, uint8_t cap_sel, uint8_t step,
                       const uint8_t *s, size_t len)
{
    uint8_t hdr[1] = {step};
    static uint8_t tmp[OVL_WIRE_MAX_MSG];

    memcpy(tmp, hdr, 1);
    memcpy(tmp + 1, s, len);
    put("ovl_stream", name, cap_sel, tmp, len + 1);
}

static void stream_seeds(void)
{
    static uint8_t s[8192];
    size_t off = 0, len;
    int n;

    setup();
    n = ovl_stream_frame(s, sizeof(s), f.rekey_init, f.rekey_init_len);
    off += (size_t)n;
    len = data_from(&f.cs, "tcp media", FZ_T1);
    off += (size_t)ovl_stream_frame(s + off, sizeof(s) - off, buf, len);
    s[off++] = 0; /* an empty frame */
    s[off++] = 0;
    len = data_from(&f.cs, "", FZ_T1);
    off += (size_t)ovl_stream_frame(s + off, sizeof(s) - off, buf, len);
    stream_put("three_messages", 0xFF, 3, s, off);
    stream_put("three_messages_small_reads", 0xFF, 0, s, off);
    stream_put("truncated", 0xFF, 9, s, off - 5);
    /* 255 * 16 = 4080 < 4096-byte frame: fails; then one that fits. */
    s[0] = 0x10;
    s[1] = 0x00;
    memset(s + 2, 0xAB, 4096);
    stream_put("oversize", 0xFE, 1, s, 4098);
    stream_put("max_size", 0xFF, 200, s, 4098);
    s[0] = 0;
    s[1] = 17;
    stream_put("oversize_small_buffer", 0x00, 5, s, 19);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    base = argv[1];
    wire_seeds();
    stream_seeds();
    fz_teardown(&f);
    return 0;
}
