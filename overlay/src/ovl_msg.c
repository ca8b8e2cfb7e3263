/*
 * ovl_msg.c: encoding and bounded decoding of overlay messages
 * (layouts in ovl_msg.h, prose in docs/protocol.md part 2).
 *
 * The decoder is table-driven: each type has a fixed part, a set of flags
 * it may carry and a body parser that consumes exactly the rest. Every
 * length comes from the message itself and is checked against what
 * remains before use; nothing is ever read past @len.
 */
#include "ovl_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* ---- Names ---------------------------------------------------------------- */

const char *ovl_mdrop_name(enum ovl_mdrop d)
{
    static const char *const names[OVL_MD__COUNT] = {
        [OVL_MD_NONE] = "none",
        [OVL_MD_TOO_SHORT] = "too_short",
        [OVL_MD_TOO_LONG] = "too_long",
        [OVL_MD_BAD_VERSION] = "bad_version",
        [OVL_MD_BAD_TYPE] = "bad_type",
        [OVL_MD_BAD_FLAGS] = "bad_flags",
        [OVL_MD_BAD_RESERVED] = "bad_reserved",
        [OVL_MD_BAD_COUNT] = "bad_count",
        [OVL_MD_BAD_ADDR] = "bad_addr",
        [OVL_MD_BAD_NAME] = "bad_name",
        [OVL_MD_BAD_RID] = "bad_rid",
    };

    return (unsigned)d < OVL_MD__COUNT ? names[d] : "?";
}

/* Per-type rules: printable name, allowed flag bits, request or not. */
struct mtype_info {
    uint8_t type;
    const char *name;
    uint8_t flags;
    bool request;
};

static const struct mtype_info mtypes[] = {
    {OVL_M_PING, "PING", OVL_MF_DHT_MEMBER, true},
    {OVL_M_PONG, "PONG", 0, false},
    {OVL_M_ERROR, "ERROR", 0, false},
    {OVL_M_LOGIN, "LOGIN", OVL_MF_LOGIN_FALLBACK | OVL_MF_LOGIN_HAS_CERT,
     true},
    {OVL_M_LOGIN_OK, "LOGIN_OK", 0, false},
    {OVL_M_LOGIN_ERR, "LOGIN_ERR", 0, false},
    {OVL_M_HOSTCACHE_GET, "HOSTCACHE_GET", OVL_MF_DHT_MEMBER, true},
    {OVL_M_HOSTCACHE, "HOSTCACHE", 0, false},
    {OVL_M_FIND_NODE, "FIND_NODE", OVL_MF_DHT_MEMBER, true},
    {OVL_M_NODES, "NODES", 0, false},
    {OVL_M_STORE, "STORE", OVL_MF_DHT_MEMBER | OVL_MF_SEARCH, true},
    {OVL_M_STORE_OK, "STORE_OK", 0, false},
    {OVL_M_FIND_VALUE, "FIND_VALUE", OVL_MF_DHT_MEMBER | OVL_MF_SEARCH, true},
    {OVL_M_VALUE, "VALUE", 0, false},
    {OVL_M_SUBSCRIBE, "SUBSCRIBE",
     OVL_MF_DHT_MEMBER | OVL_MF_SEARCH | OVL_MF_UNSUBSCRIBE, true},
    {OVL_M_NOTIFY, "NOTIFY", 0, false},
    {OVL_M_REACH_PROBE, "REACH_PROBE", OVL_MF_DHT_MEMBER | OVL_MF_REACH_RELAY,
     true},
    {OVL_M_REACH_OK, "REACH_OK", 0, false},
};

static const struct mtype_info *mtype_find(uint8_t type)
{
    for (size_t i = 0; i < sizeof(mtypes) / sizeof(mtypes[0]); i++)
        if (mtypes[i].type == type)
            return &mtypes[i];
    return NULL;
}

const char *ovl_mtype_name(uint8_t type)
{
    const struct mtype_info *t = mtype_find(type);

    return t ? t->name : "?";
}

bool ovl_mtype_is_request(uint8_t type)
{
    const struct mtype_info *t = mtype_find(type);

    return t && t->request;
}

bool ovl_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > OVL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7E)
            return false;
    return true;
}

/* ---- Addresses and contacts ------------------------------------------------- */

int ovl_addr_encode(uint8_t out[20], const struct ovl_addr *a, bool optional)
{
    struct ovl_msgw_addr *w = (struct ovl_msgw_addr *)out;

    memset(out, 0, sizeof(*w));
    if (a->family == OVL_AF_NONE)
        return optional ? 0 : -EINVAL;
    if ((a->family != OVL_AF_INET && a->family != OVL_AF_INET6) ||
        a->port == 0)
        return -EINVAL;
    w->family = a->family;
    ovl_store_be16(w->port_be, a->port);
    memcpy(w->ip, a->ip, a->family == OVL_AF_INET ? 4 : 16);
    return 0;
}

int ovl_addr_decode(struct ovl_addr *a, const uint8_t in[20], bool optional)
{
    const struct ovl_msgw_addr *w = (const struct ovl_msgw_addr *)in;

    memset(a, 0, sizeof(*a));
    if (w->reserved != 0)
        return -EBADMSG;
    if (w->family == OVL_AF_NONE)
        return optional && sodium_is_zero(in, sizeof(*w)) ? 0 : -EBADMSG;
    if (w->family != OVL_AF_INET && w->family != OVL_AF_INET6)
        return -EBADMSG;
    a->port = ovl_load_be16(w->port_be);
    if (a->port == 0)
        return -EBADMSG;
    /* IPv4 keeps bytes 4..15 zero so one address has one encoding. */
    if (w->family == OVL_AF_INET && !sodium_is_zero(w->ip + 4, 12))
        return -EBADMSG;
    a->family = w->family;
    memcpy(a->ip, w->ip, 16);
    return 0;
}

bool ovl_addr_eq(const struct ovl_addr *a, const struct ovl_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, 16) == 0;
}

size_t ovl_addr_compact(uint8_t out[OVL_ADDR_COMPACT_MAX],
                        const struct ovl_addr *a)
{
    size_t iplen;

    if (a->family == OVL_AF_INET)
        iplen = 4;
    else if (a->family == OVL_AF_INET6)
        iplen = 16;
    else
        return 0;
    out[0] = a->family;
    ovl_store_be16(out + 1, a->port);
    memcpy(out + 3, a->ip, iplen);
    return 3 + iplen;
}

int ovl_addr_from_compact(struct ovl_addr *a, const uint8_t *in, size_t len)
{
    memset(a, 0, sizeof(*a));
    if (len == 7 && in[0] == OVL_AF_INET) {
        memcpy(a->ip, in + 3, 4);
    } else if (len == 19 && in[0] == OVL_AF_INET6) {
        memcpy(a->ip, in + 3, 16);
    } else {
        return -EINVAL;
    }
    a->family = in[0];
    a->port = ovl_load_be16(in + 1);
    return 0;
}

void ovl_addr_v4(struct ovl_addr *a, uint32_t ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->family = OVL_AF_INET;
    a->port = port;
    a->ip[0] = (uint8_t)(ip >> 24);
    a->ip[1] = (uint8_t)(ip >> 16);
    a->ip[2] = (uint8_t)(ip >> 8);
    a->ip[3] = (uint8_t)ip;
}

void ovl_addr_to_text(char *out, size_t cap, const struct ovl_addr *a)
{
    char ip[INET6_ADDRSTRLEN];

    if (cap == 0)
        return;
    if (a->family == OVL_AF_INET && inet_ntop(AF_INET, a->ip, ip, sizeof(ip)))
        snprintf(out, cap, "%s:%u", ip, a->port);
    else if (a->family == OVL_AF_INET6 && inet_ntop(AF_INET6, a->ip, ip, sizeof(ip)))
        snprintf(out, cap, "[%s]:%u", ip, a->port);
    else
        snprintf(out, cap, "none");
}

void ovl_contact_encode(struct ovl_msgw_contact *w, const struct ovl_contact *c)
{
    memset(w, 0, sizeof(*w));
    memcpy(w->identity, c->identity, OVL_ED_PK_LEN);
    (void)ovl_addr_encode((uint8_t *)&w->udp, &c->udp, true);
    ovl_store_be16(w->tcp_port_be, c->tcp_port);
    w->flags = c->flags;
}

int ovl_contact_decode(struct ovl_contact *c, const struct ovl_msgw_contact *w)
{
    memset(c, 0, sizeof(*c));
    if (w->reserved != 0 || (w->flags & ~OVL_CF_KNOWN))
        return -EBADMSG;
    if (ovl_addr_decode(&c->udp, (const uint8_t *)&w->udp, false) != 0)
        return -EBADMSG;
    memcpy(c->identity, w->identity, OVL_ED_PK_LEN);
    ovl_node_id(c->node_id, c->identity);
    c->tcp_port = ovl_load_be16(w->tcp_port_be);
    c->flags = w->flags;
    return 0;
}

static bool contact_encodable(const struct ovl_contact *c)
{
    uint8_t tmp[20];

    return (c->flags & ~OVL_CF_KNOWN) == 0 &&
           ovl_addr_encode(tmp, &c->udp, false) == 0;
}

/* ---- Writer ------------------------------------------------------------------ */

struct wr {
    uint8_t *p;
    size_t cap, len;
    bool overflow;
};

static uint8_t *wr_take(struct wr *w, size_t n)
{
    uint8_t *at;

    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return NULL;
    }
    at = w->p + w->len;
    memset(at, 0, n);
    w->len += n;
    return at;
}

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
    uint8_t *at = wr_take(w, n);

    if (at && n)
        memcpy(at, src, n);
}

static int wr_contacts(struct wr *w, const struct ovl_contact *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ovl_msgw_contact *cw;

        if (!contact_encodable(&c[i]))
            return -EINVAL;
        cw = (struct ovl_msgw_contact *)wr_take(w, sizeof(*cw));
        if (cw)
            ovl_contact_encode(cw, &c[i]);
    }
    return 0;
}

static bool record_len_ok(const uint8_t *rec, size_t len)
{
    return rec != NULL && len >= OVL_RECORD_MIN && len <= OVL_RECORD_MAX;
}

static int encode_body(const struct ovl_msg *m, struct wr *w)
{
    switch (m->type) {
    case OVL_M_PING:
        return 0;
    case OVL_M_PONG: {
        uint8_t *a = wr_take(w, sizeof(struct ovl_msgw_pong));
        return a ? ovl_addr_encode(a, &m->u.pong.observed, true) : 0;
    }
    case OVL_M_ERROR: {
        uint8_t *b = wr_take(w, sizeof(struct ovl_msgw_error));
        if (m->u.error.code == 0 || m->u.error.code > OVL_MERR__MAX)
            return -EINVAL;
        if (b)
            ovl_store_be16(b, m->u.error.code);
        return 0;
    }
    case OVL_M_LOGIN: {
        struct ovl_msgw_login *l;
        size_t hl = m->u.login.handle_len;

        if (hl > OVL_NAME_MAX || m->u.login.role > OVL_ROLE__MAX ||
            (hl && !ovl_name_valid(m->u.login.handle, hl)) ||
            !(m->flags & OVL_MF_LOGIN_HAS_CERT) != !m->u.login.cert)
            return -EINVAL;
        l = (struct ovl_msgw_login *)wr_take(w, sizeof(*l));
        if (l) {
            l->handle_len = (uint8_t)hl;
            l->role = m->u.login.role;
        }
        wr_bytes(w, m->u.login.handle, hl);
        if (m->u.login.cert)
            wr_bytes(w, m->u.login.cert, OVL_CERT_LEN);
        return 0;
    }
    case OVL_M_LOGIN_OK: {
        struct ovl_msgw_login_ok *l =
            (struct ovl_msgw_login_ok *)wr_take(w, sizeof(*l));
        if (l == NULL)
            return 0;
        ovl_store_be16(l->keepalive_s_be, m->u.login_ok.keepalive_s);
        return ovl_addr_encode((uint8_t *)&l->observed,
                               &m->u.login_ok.observed, true);
    }
    case OVL_M_LOGIN_ERR: {
        struct ovl_msgw_login_err *l;

        if (m->u.login_err.count > OVL_LOGIN_ERR_CONTACTS_MAX ||
            m->u.login_err.code == 0 || m->u.login_err.code > OVL_MERR__MAX)
            return -EINVAL;
        l = (struct ovl_msgw_login_err *)wr_take(w, sizeof(*l));
        if (l) {
            ovl_store_be16(l->code_be, m->u.login_err.code);
            l->count = m->u.login_err.count;
        }
        return wr_contacts(w, m->u.login_err.contacts, m->u.login_err.count);
    }
    case OVL_M_HOSTCACHE_GET: {
        uint8_t *b = wr_take(w, sizeof(struct ovl_msgw_hostcache_get));
        if (m->u.hostcache_get.max == 0 ||
            m->u.hostcache_get.max > OVL_CONTACTS_MAX)
            return -EINVAL;
        if (b)
            b[0] = m->u.hostcache_get.max;
        return 0;
    }
    case OVL_M_HOSTCACHE:
    case OVL_M_NODES: {
        uint8_t *b;

        if (m->u.contacts.count > OVL_CONTACTS_MAX)
            return -EINVAL;
        b = wr_take(w, sizeof(struct ovl_msgw_contacts));
        if (b)
            b[0] = m->u.contacts.count;
        return wr_contacts(w, m->u.contacts.contacts, m->u.contacts.count);
    }
    case OVL_M_FIND_NODE:
        wr_bytes(w, m->u.find_node.target, OVL_KEY_LEN_DHT);
        return 0;
    case OVL_M_STORE: {
        uint8_t *b;

        if (!record_len_ok(m->u.store.record, m->u.store.record_len))
            return -EINVAL;
        b = wr_take(w, sizeof(struct ovl_msgw_store));
        if (b)
            ovl_store_be16(b, m->u.store.record_len);
        wr_bytes(w, m->u.store.record, m->u.store.record_len);
        return 0;
    }
    case OVL_M_STORE_OK: {
        struct ovl_msgw_store_ok *s;

        if (m->u.store_ok.status > OVL_STORE__MAX)
            return -EINVAL;
        s = (struct ovl_msgw_store_ok *)wr_take(w, sizeof(*s));
        if (s) {
            s->status = m->u.store_ok.status;
            ovl_store_be16(s->replicas_be, m->u.store_ok.replicas);
            ovl_store_le64(s->seq_le, m->u.store_ok.seq);
        }
        return 0;
    }
    case OVL_M_FIND_VALUE: {
        struct ovl_msgw_find_value *f =
            (struct ovl_msgw_find_value *)wr_take(w, sizeof(*f));
        if (f) {
            memcpy(f->key, m->u.find_value.key, OVL_KEY_LEN_DHT);
            ovl_store_le64(f->known_seq_le, m->u.find_value.known_seq);
        }
        return 0;
    }
    case OVL_M_VALUE: {
        struct ovl_msgw_value *v;
        bool found = m->u.value.status == OVL_VALUE_FOUND;
        uint16_t rl = found ? m->u.value.record_len : 0;

        if (m->u.value.status > OVL_VALUE__MAX ||
            m->u.value.count > OVL_CONTACTS_MAX ||
            (found && !record_len_ok(m->u.value.record, rl)))
            return -EINVAL;
        v = (struct ovl_msgw_value *)wr_take(w, sizeof(*v));
        if (v) {
            v->status = m->u.value.status;
            v->count = m->u.value.count;
            ovl_store_be16(v->record_len_be, rl);
            v->rounds = m->u.value.rounds;
            ovl_store_be16(v->messages_be, m->u.value.messages);
        }
        if (found)
            wr_bytes(w, m->u.value.record, rl);
        return wr_contacts(w, m->u.value.contacts, m->u.value.count);
    }
    case OVL_M_SUBSCRIBE: {
        struct ovl_msgw_subscribe *s;
        bool unsub = m->flags & OVL_MF_UNSUBSCRIBE;

        if (m->u.subscribe.ttl_s > 3600 || (!unsub && !m->u.subscribe.ttl_s))
            return -EINVAL;
        s = (struct ovl_msgw_subscribe *)wr_take(w, sizeof(*s));
        if (s) {
            memcpy(s->key, m->u.subscribe.key, OVL_KEY_LEN_DHT);
            ovl_store_be16(s->ttl_s_be, m->u.subscribe.ttl_s);
        }
        return 0;
    }
    case OVL_M_NOTIFY: {
        struct ovl_msgw_notify *n;
        uint16_t rl = m->u.notify.record ? m->u.notify.record_len : 0;

        if (m->u.notify.record && !record_len_ok(m->u.notify.record, rl))
            return -EINVAL;
        n = (struct ovl_msgw_notify *)wr_take(w, sizeof(*n));
        if (n) {
            memcpy(n->key, m->u.notify.key, OVL_KEY_LEN_DHT);
            ovl_store_be16(n->record_len_be, rl);
        }
        if (rl)
            wr_bytes(w, m->u.notify.record, rl);
        return 0;
    }
    case OVL_M_REACH_PROBE:
    case OVL_M_REACH_OK: {
        struct ovl_msgw_reach *r;

        if (!contact_encodable(&m->u.reach.target) ||
            (m->u.reach.result & ~OVL_REACH_KNOWN) ||
            (m->type == OVL_M_REACH_PROBE && m->u.reach.result))
            return -EINVAL;
        r = (struct ovl_msgw_reach *)wr_take(w, sizeof(*r));
        if (r) {
            ovl_contact_encode(&r->target, &m->u.reach.target);
            r->result = m->u.reach.result;
        }
        return 0;
    }
    default:
        return -EINVAL;
    }
}

int ovl_msg_encode(const struct ovl_msg *m, uint8_t *out, size_t cap)
{
    const struct mtype_info *t;
    struct ovl_msgw_hdr *h;
    struct wr w = {out, cap < OVL_MSG_MAX ? cap : OVL_MSG_MAX, 0, false};
    int ret;

    if (m == NULL || out == NULL)
        return -EINVAL;
    t = mtype_find(m->type);
    if (t == NULL || (m->flags & ~t->flags) ||
        (m->rid == 0 && m->type != OVL_M_NOTIFY))
        return -EINVAL;
    h = (struct ovl_msgw_hdr *)wr_take(&w, sizeof(*h));
    if (h) {
        h->version = OVL_MSG_VERSION;
        h->type = m->type;
        h->flags = m->flags;
        ovl_store_le32(h->rid_le, m->rid);
    }
    ret = encode_body(m, &w);
    if (ret)
        return ret;
    if (w.overflow)
        return cap < OVL_MSG_MAX ? -ENOBUFS : -EINVAL;
    return (int)w.len;
}

/* ---- Reader ------------------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    size_t len, off;
    enum ovl_mdrop why;
};

/* Takes @n bytes or fails the read with TOO_SHORT. */
static const uint8_t *rd_take(struct rd *r, size_t n)
{
    const uint8_t *at;

    if (r->why != OVL_MD_NONE)
        return NULL;
    if (n > r->len - r->off) {
        r->why = OVL_MD_TOO_SHORT;
        return NULL;
    }
    at = r->p + r->off;
    r->off += n;
    return at;
}

static void rd_fail(struct rd *r, enum ovl_mdrop why)
{
    if (r->why == OVL_MD_NONE)
        r->why = why;
}

static bool zero(const uint8_t *p, size_t n)
{
    return sodium_is_zero(p, n) != 0;
}

static void rd_contacts(struct rd *r, struct ovl_contact *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *w = rd_take(r, sizeof(struct ovl_msgw_contact));

        if (w == NULL)
            return;
        if (ovl_contact_decode(&c[i], (const struct ovl_msgw_contact *)w)) {
            rd_fail(r, OVL_MD_BAD_ADDR);
            return;
        }
    }
}

/* A record of @len bytes at the read position (bounds only). */
static const uint8_t *rd_record(struct rd *r, size_t len)
{
    if (len < OVL_RECORD_MIN || len > OVL_RECORD_MAX) {
        rd_fail(r, OVL_MD_BAD_COUNT);
        return NULL;
    }
    return rd_take(r, len);
}

static void decode_login(struct ovl_msg *m, struct rd *r)
{
    const struct ovl_msgw_login *l =
        (const void *)rd_take(r, sizeof(struct ovl_msgw_login));
    const uint8_t *h;

    if (l == NULL)
        return;
    if (!zero(l->reserved, sizeof(l->reserved)))
        return rd_fail(r, OVL_MD_BAD_RESERVED);
    if (l->role > OVL_ROLE__MAX || l->handle_len > OVL_NAME_MAX)
        return rd_fail(r, OVL_MD_BAD_COUNT);
    m->u.login.role = l->role;
    m->u.login.handle_len = l->handle_len;
    h = rd_take(r, l->handle_len);
    if (h == NULL)
        return;
    if (l->handle_len && !ovl_name_valid((const char *)h, l->handle_len))
        return rd_fail(r, OVL_MD_BAD_NAME);
    memcpy(m->u.login.handle, h, l->handle_len);
    m->u.login.handle[l->handle_len] = '\0';
    if (m->flags & OVL_MF_LOGIN_HAS_CERT)
        m->u.login.cert = rd_take(r, OVL_CERT_LEN);
}

static void decode_body(struct ovl_msg *m, struct rd *r)
{
    const uint8_t *b;

    switch (m->type) {
    case OVL_M_PING:
        return;
    case OVL_M_PONG:
        if ((b = rd_take(r, sizeof(struct ovl_msgw_pong))) &&
            ovl_addr_decode(&m->u.pong.observed, b, true))
            rd_fail(r, OVL_MD_BAD_ADDR);
        return;
    case OVL_M_ERROR:
        if ((b = rd_take(r, sizeof(struct ovl_msgw_error))) == NULL)
            return;
        if (!zero(b + 2, 2))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        m->u.error.code = ovl_load_be16(b);
        if (m->u.error.code == 0 || m->u.error.code > OVL_MERR__MAX)
            rd_fail(r, OVL_MD_BAD_COUNT);
        return;
    case OVL_M_LOGIN:
        return decode_login(m, r);
    case OVL_M_LOGIN_OK: {
        const struct ovl_msgw_login_ok *l =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_login_ok));
        if (l == NULL)
            return;
        if (!zero(l->reserved, sizeof(l->reserved)))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        if (ovl_addr_decode(&m->u.login_ok.observed,
                            (const uint8_t *)&l->observed, true))
            return rd_fail(r, OVL_MD_BAD_ADDR);
        m->u.login_ok.keepalive_s = ovl_load_be16(l->keepalive_s_be);
        return;
    }
    case OVL_M_LOGIN_ERR: {
        const struct ovl_msgw_login_err *l =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_login_err));
        if (l == NULL)
            return;
        if (l->reserved)
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        m->u.login_err.code = ovl_load_be16(l->code_be);
        m->u.login_err.count = l->count;
        if (l->count > OVL_LOGIN_ERR_CONTACTS_MAX ||
            m->u.login_err.code == 0 || m->u.login_err.code > OVL_MERR__MAX)
            return rd_fail(r, OVL_MD_BAD_COUNT);
        return rd_contacts(r, m->u.login_err.contacts, l->count);
    }
    case OVL_M_HOSTCACHE_GET:
        if ((b = rd_take(r, sizeof(struct ovl_msgw_hostcache_get))) == NULL)
            return;
        if (!zero(b + 1, 3))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        if (b[0] == 0 || b[0] > OVL_CONTACTS_MAX)
            return rd_fail(r, OVL_MD_BAD_COUNT);
        m->u.hostcache_get.max = b[0];
        return;
    case OVL_M_HOSTCACHE:
    case OVL_M_NODES:
        if ((b = rd_take(r, sizeof(struct ovl_msgw_contacts))) == NULL)
            return;
        if (!zero(b + 1, 3))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        if (b[0] > OVL_CONTACTS_MAX)
            return rd_fail(r, OVL_MD_BAD_COUNT);
        m->u.contacts.count = b[0];
        return rd_contacts(r, m->u.contacts.contacts, b[0]);
    case OVL_M_FIND_NODE:
        if ((b = rd_take(r, OVL_KEY_LEN_DHT)))
            memcpy(m->u.find_node.target, b, OVL_KEY_LEN_DHT);
        return;
    case OVL_M_STORE:
        if ((b = rd_take(r, sizeof(struct ovl_msgw_store))) == NULL)
            return;
        if (!zero(b + 2, 2))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        m->u.store.record_len = ovl_load_be16(b);
        m->u.store.record = rd_record(r, m->u.store.record_len);
        return;
    case OVL_M_STORE_OK: {
        const struct ovl_msgw_store_ok *s =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_store_ok));
        if (s == NULL)
            return;
        if (s->reserved)
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        if (s->status > OVL_STORE__MAX)
            return rd_fail(r, OVL_MD_BAD_COUNT);
        m->u.store_ok.status = s->status;
        m->u.store_ok.replicas = ovl_load_be16(s->replicas_be);
        m->u.store_ok.seq = ovl_load_le64(s->seq_le);
        return;
    }
    case OVL_M_FIND_VALUE: {
        const struct ovl_msgw_find_value *f =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_find_value));
        if (f == NULL)
            return;
        memcpy(m->u.find_value.key, f->key, OVL_KEY_LEN_DHT);
        m->u.find_value.known_seq = ovl_load_le64(f->known_seq_le);
        return;
    }
    case OVL_M_VALUE: {
        const struct ovl_msgw_value *v =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_value));
        uint16_t rl;

        if (v == NULL)
            return;
        if (v->reserved)
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        rl = ovl_load_be16(v->record_len_be);
        if (v->status > OVL_VALUE__MAX || v->count > OVL_CONTACTS_MAX ||
            (v->status != OVL_VALUE_FOUND && rl != 0))
            return rd_fail(r, OVL_MD_BAD_COUNT);
        m->u.value.status = v->status;
        m->u.value.count = v->count;
        m->u.value.rounds = v->rounds;
        m->u.value.messages = ovl_load_be16(v->messages_be);
        if (v->status == OVL_VALUE_FOUND) {
            m->u.value.record_len = rl;
            m->u.value.record = rd_record(r, rl);
        }
        return rd_contacts(r, m->u.value.contacts, v->count);
    }
    case OVL_M_SUBSCRIBE: {
        const struct ovl_msgw_subscribe *s =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_subscribe));
        if (s == NULL)
            return;
        if (!zero(s->reserved, sizeof(s->reserved)))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        memcpy(m->u.subscribe.key, s->key, OVL_KEY_LEN_DHT);
        m->u.subscribe.ttl_s = ovl_load_be16(s->ttl_s_be);
        if (m->u.subscribe.ttl_s > 3600 ||
            (!(m->flags & OVL_MF_UNSUBSCRIBE) && !m->u.subscribe.ttl_s))
            rd_fail(r, OVL_MD_BAD_COUNT);
        return;
    }
    case OVL_M_NOTIFY: {
        const struct ovl_msgw_notify *n =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_notify));
        uint16_t rl;

        if (n == NULL)
            return;
        if (!zero(n->reserved, sizeof(n->reserved)))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        memcpy(m->u.notify.key, n->key, OVL_KEY_LEN_DHT);
        rl = ovl_load_be16(n->record_len_be);
        if (rl) {
            m->u.notify.record_len = rl;
            m->u.notify.record = rd_record(r, rl);
        }
        return;
    }
    case OVL_M_REACH_PROBE:
    case OVL_M_REACH_OK: {
        const struct ovl_msgw_reach *w =
            (const void *)rd_take(r, sizeof(struct ovl_msgw_reach));
        if (w == NULL)
            return;
        if (!zero(w->reserved, sizeof(w->reserved)))
            return rd_fail(r, OVL_MD_BAD_RESERVED);
        if ((w->result & ~OVL_REACH_KNOWN) ||
            (m->type == OVL_M_REACH_PROBE && w->result))
            return rd_fail(r, OVL_MD_BAD_COUNT);
        if (ovl_contact_decode(&m->u.reach.target, &w->target))
            return rd_fail(r, OVL_MD_BAD_ADDR);
        m->u.reach.result = w->result;
        return;
    }
    default:
        rd_fail(r, OVL_MD_BAD_TYPE);
    }
}

int ovl_msg_decode(struct ovl_msg *m, const uint8_t *buf, size_t len,
                   enum ovl_mdrop *why)
{
    struct rd r = {buf, len, 0, OVL_MD_NONE};
    const struct ovl_msgw_hdr *h;
    const struct mtype_info *t;
    enum ovl_mdrop dummy;

    if (why == NULL)
        why = &dummy;
    *why = OVL_MD_NONE;
    if (m == NULL || (buf == NULL && len)) {
        *why = OVL_MD_TOO_SHORT;
        return -EBADMSG;
    }
    /* Only the header is cleared: the union is filled per type, and
     * zeroing 1.5 KB per message shows in a 60,000-node simulation. */
    m->type = 0;
    m->flags = 0;
    m->rid = 0;
    if (len > OVL_MSG_MAX) {
        *why = OVL_MD_TOO_LONG;
        return -EBADMSG;
    }
    h = (const struct ovl_msgw_hdr *)rd_take(&r, sizeof(*h));
    if (h == NULL)
        goto fail;
    if (h->version != OVL_MSG_VERSION) {
        r.why = OVL_MD_BAD_VERSION;
        goto fail;
    }
    t = mtype_find(h->type);
    if (t == NULL) {
        r.why = OVL_MD_BAD_TYPE;
        goto fail;
    }
    if (h->flags & ~t->flags) {
        r.why = OVL_MD_BAD_FLAGS;
        goto fail;
    }
    if (h->reserved) {
        r.why = OVL_MD_BAD_RESERVED;
        goto fail;
    }
    m->type = h->type;
    m->flags = h->flags;
    m->rid = ovl_load_le32(h->rid_le);
    if (m->rid == 0 && m->type != OVL_M_NOTIFY) {
        r.why = OVL_MD_BAD_RID;
        goto fail;
    }
    switch (m->type) { /* clear the pointer fields a type may leave unset */
    case OVL_M_LOGIN:
        m->u.login.cert = NULL;
        break;
    case OVL_M_VALUE:
        m->u.value.record = NULL;
        m->u.value.record_len = 0;
        break;
    case OVL_M_NOTIFY:
        m->u.notify.record = NULL;
        m->u.notify.record_len = 0;
        break;
    default:
        break;
    }
    decode_body(m, &r);
    if (r.why == OVL_MD_NONE && r.off != len)
        r.why = OVL_MD_TOO_LONG;
    if (r.why == OVL_MD_NONE)
        return 0;
fail:
    *why = r.why;
    return -EBADMSG;
}

const char *ovl_role_name(enum ovl_role role)
{
    return role == OVL_ROLE_SUPERNODE ? "supernode" : "peer";
}

const char *ovl_rtype_name(uint8_t rtype)
{
    switch (rtype) {
    case OVL_R_PRESENCE: return "presence";
    case OVL_R_LASTSEEN: return "lastseen";
    case OVL_R_ROOM: return "room";
    default: return "unknown";
    }
}
