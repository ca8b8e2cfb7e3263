/*
 * fuzz_ovl_msg.c: libFuzzer target for the overlay message decoder
 * (ovl_msg_decode, ovl_msg.h). The input is one message.
 *
 * Beyond "no crash, no sanitizer report" it checks the decoder's
 * contract:
 *  - a refusal names a reason;
 *  - an accepted message is canonical: it encodes back to exactly the
 *    input bytes, and no shorter prefix of it decodes (every length is
 *    explicit, so trailing bytes can only be junk);
 *  - requests carry a request id, contacts carry the node id of their
 *    key, and record and certificate pointers lie inside the input with
 *    lengths within their bounds;
 *  - what a record pointer designates goes through the record parser
 *    without harm.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; otherwise
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_msg (made by
 * ovl_dir_seeds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ovl_dir_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_contacts(const struct ovl_contact *c, size_t n)
{
    uint8_t id[OVL_NODE_ID_LEN];

    for (size_t i = 0; i < n; i++) {
        ovl_node_id(id, c[i].identity);
        FZD_CHECK(memcmp(id, c[i].node_id, sizeof(id)) == 0);
        FZD_CHECK(c[i].udp.family == OVL_AF_INET ||
                  c[i].udp.family == OVL_AF_INET6);
        FZD_CHECK(c[i].udp.port != 0);
    }
}

/* A pointer into the message: inside it, with its length. */
static void check_inside(const uint8_t *p, size_t n, const uint8_t *buf,
                         size_t len)
{
    FZD_CHECK(p >= buf && n <= len && (size_t)(p - buf) <= len - n);
}

static void check_record(const uint8_t *rec, size_t n, const uint8_t *buf,
                         size_t len)
{
    struct ovl_record r;

    FZD_CHECK(rec != NULL);
    FZD_CHECK(n >= OVL_RECORD_MIN && n <= OVL_RECORD_MAX);
    check_inside(rec, n, buf, len);
    if (ovl_record_parse(&r, rec, n) == 0)
        FZD_CHECK(r.raw == rec && r.raw_len == n);
}

static void check_fields(const struct ovl_msg *m, const uint8_t *buf,
                         size_t len)
{
    FZD_CHECK(strcmp(ovl_mtype_name(m->type), "?") != 0);
    if (ovl_mtype_is_request(m->type) || m->type != OVL_M_NOTIFY)
        FZD_CHECK(m->rid != 0);
    switch (m->type) {
    case OVL_M_LOGIN:
        FZD_CHECK(m->u.login.handle_len <= OVL_NAME_MAX);
        FZD_CHECK(strlen(m->u.login.handle) == m->u.login.handle_len);
        if (m->u.login.cert)
            check_inside(m->u.login.cert, OVL_CERT_LEN, buf, len);
        FZD_CHECK(!(m->flags & OVL_MF_LOGIN_HAS_CERT) == !m->u.login.cert);
        break;
    case OVL_M_LOGIN_ERR:
        FZD_CHECK(m->u.login_err.count <= OVL_LOGIN_ERR_CONTACTS_MAX);
        check_contacts(m->u.login_err.contacts, m->u.login_err.count);
        break;
    case OVL_M_HOSTCACHE:
    case OVL_M_NODES:
        FZD_CHECK(m->u.contacts.count <= OVL_CONTACTS_MAX);
        check_contacts(m->u.contacts.contacts, m->u.contacts.count);
        break;
    case OVL_M_STORE:
        check_record(m->u.store.record, m->u.store.record_len, buf, len);
        break;
    case OVL_M_VALUE:
        FZD_CHECK(m->u.value.count <= OVL_CONTACTS_MAX);
        check_contacts(m->u.value.contacts, m->u.value.count);
        FZD_CHECK((m->u.value.status == OVL_VALUE_FOUND) ==
                  (m->u.value.record != NULL));
        if (m->u.value.record)
            check_record(m->u.value.record, m->u.value.record_len, buf, len);
        break;
    case OVL_M_NOTIFY:
        if (m->u.notify.record)
            check_record(m->u.notify.record, m->u.notify.record_len, buf,
                         len);
        break;
    case OVL_M_REACH_PROBE:
    case OVL_M_REACH_OK:
        check_contacts(&m->u.reach.target, 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t copy[OVL_MSG_MAX + 64], out[OVL_MSG_MAX + 64];
    static struct ovl_msg m, again;
    enum ovl_mdrop why;
    int rc, len;

    (void)fzd_world();
    if (size > sizeof(copy))
        return 0;
    /* A private copy with exact bounds, so ASan sees any overread. */
    memcpy(copy, data, size);
    rc = ovl_msg_decode(&m, copy, size, &why);
    if (rc != 0) {
        FZD_CHECK(rc == -EBADMSG);
        FZD_CHECK(why > OVL_MD_NONE && why < OVL_MD__COUNT);
        FZD_CHECK(strcmp(ovl_mdrop_name(why), "?") != 0);
        return 0;
    }
    FZD_CHECK(why == OVL_MD_NONE);
    FZD_CHECK(size >= OVL_MSG_HDR_LEN && size <= OVL_MSG_MAX);
    check_fields(&m, copy, size);

    /* Canonical: the same bytes come back, and only with enough room. */
    len = ovl_msg_encode(&m, out, sizeof(out));
    FZD_CHECK(len == (int)size);
    FZD_CHECK(memcmp(out, copy, size) == 0);
    FZD_CHECK(ovl_msg_encode(&m, out, size - 1) == -ENOBUFS);

    /* No prefix is a message too. */
    FZD_CHECK(ovl_msg_decode(&again, copy, size - 1, &why) == -EBADMSG);
    return 0;
}
