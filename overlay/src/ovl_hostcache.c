/*
 * ovl_hostcache.c: the host cache (ovl_node.h): up to OVL_HOSTCACHE_MAX
 * supernode contacts with the time each last worked, seeded from a
 * bootstrap list, refreshed from supernodes, persisted by the driver in
 * the format of ovl_msg.h (struct ovl_hcw_head, struct ovl_hcw_entry).
 */
#include "ovl_node_internal.h"

static int find(const struct ovl_hostcache *hc, const uint8_t id[32])
{
    for (int i = 0; i < hc->n; i++)
        if (memcmp(hc->e[i].c.node_id, id, 32) == 0)
            return i;
    return -1;
}

void ovl_hc_init(struct ovl_hostcache *hc)
{
    hc->n = 0;
}

/* The entry that gives way when full: most failures, then oldest. */
static int victim(const struct ovl_hostcache *hc)
{
    int v = 0;

    for (int i = 1; i < hc->n; i++)
        if (hc->e[i].fails > hc->e[v].fails ||
            (hc->e[i].fails == hc->e[v].fails &&
             hc->e[i].last_seen < hc->e[v].last_seen))
            v = i;
    return v;
}

void ovl_hc_add(struct ovl_hostcache *hc, const struct ovl_contact *c,
                uint64_t last_seen)
{
    int i = find(hc, c->node_id);

    if (i >= 0) {
        hc->e[i].c = *c;
        if (last_seen > hc->e[i].last_seen)
            hc->e[i].last_seen = last_seen;
        return;
    }
    if (hc->n < OVL_HOSTCACHE_MAX) {
        i = hc->n++;
    } else {
        i = victim(hc);
        if (hc->e[i].fails == 0 && hc->e[i].last_seen >= last_seen)
            return;
    }
    hc->e[i].c = *c;
    hc->e[i].last_seen = last_seen;
    hc->e[i].fails = 0;
}

void ovl_hc_ok(struct ovl_hostcache *hc, const uint8_t id[32], uint64_t now_s)
{
    int i = find(hc, id);

    if (i >= 0) {
        hc->e[i].fails = 0;
        hc->e[i].last_seen = now_s;
    }
}

void ovl_hc_failed(struct ovl_hostcache *hc, const uint8_t id[32])
{
    int i = find(hc, id);

    if (i >= 0 && hc->e[i].fails < UINT8_MAX)
        hc->e[i].fails++;
}

void ovl_hc_remove(struct ovl_hostcache *hc, const uint8_t id[32])
{
    int i = find(hc, id);

    if (i >= 0)
        hc->e[i] = hc->e[--hc->n];
}

const struct ovl_hc_entry *ovl_hc_find(const struct ovl_hostcache *hc,
                                       const uint8_t id[32])
{
    int i = find(hc, id);

    return i >= 0 ? &hc->e[i] : NULL;
}

size_t ovl_hc_save_size(const struct ovl_hostcache *hc)
{
    return sizeof(struct ovl_hcw_head) +
           (size_t)hc->n * sizeof(struct ovl_hcw_entry);
}

int ovl_hc_save(const struct ovl_hostcache *hc, uint8_t *out, size_t cap)
{
    struct ovl_hcw_head *h = (struct ovl_hcw_head *)out;
    size_t len = ovl_hc_save_size(hc);

    if (out == NULL || cap < len)
        return -ENOBUFS;
    memset(out, 0, len);
    memcpy(h->magic, OVL_HOSTCACHE_MAGIC, sizeof(h->magic));
    h->version = OVL_MSG_VERSION;
    h->count_le[0] = (uint8_t)hc->n;
    h->count_le[1] = (uint8_t)(hc->n >> 8);
    for (int i = 0; i < hc->n; i++) {
        struct ovl_hcw_entry *w =
            (struct ovl_hcw_entry *)(out + sizeof(*h)) + i;

        ovl_contact_encode(&w->contact, &hc->e[i].c);
        ovl_store_le64(w->last_seen_le, hc->e[i].last_seen);
        w->fails = hc->e[i].fails;
    }
    return (int)len;
}

int ovl_hc_load(struct ovl_hostcache *hc, const uint8_t *buf, size_t len)
{
    const struct ovl_hcw_head *h = (const struct ovl_hcw_head *)buf;
    struct ovl_hostcache tmp;
    size_t count;

    if (buf == NULL || len < sizeof(*h) ||
        memcmp(h->magic, OVL_HOSTCACHE_MAGIC, sizeof(h->magic)) != 0 ||
        h->version != OVL_MSG_VERSION || h->reserved != 0)
        return -EBADMSG;
    count = (size_t)h->count_le[0] | (size_t)h->count_le[1] << 8;
    if (count > OVL_HOSTCACHE_MAX ||
        len != sizeof(*h) + count * sizeof(struct ovl_hcw_entry))
        return -EBADMSG;
    tmp.n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct ovl_hcw_entry *w =
            (const struct ovl_hcw_entry *)(buf + sizeof(*h)) + i;
        struct ovl_contact c;

        if (ovl_contact_decode(&c, &w->contact) != 0 || w->reserved[0] ||
            w->reserved[1] || w->reserved[2] || find(&tmp, c.node_id) >= 0)
            return -EBADMSG;
        tmp.e[tmp.n].c = c;
        tmp.e[tmp.n].last_seen = ovl_load_le64(w->last_seen_le);
        tmp.e[tmp.n].fails = w->fails;
        tmp.n++;
    }
    *hc = tmp;
    return 0;
}
