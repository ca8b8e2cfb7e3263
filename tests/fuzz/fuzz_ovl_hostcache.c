/*
 * fuzz_ovl_hostcache.c: libFuzzer target for the host-cache file loader
 * (ovl_hc_load, ovl_node.h), the one overlay input that comes from disk
 * rather than the network: a file another program (or a full disk) may
 * have damaged.
 *
 * Input: the file. Checks beyond "no crash, no sanitizer report":
 *  - a refused file leaves the cache exactly as it was;
 *  - an accepted one is canonical (ovl_hc_save gives the same bytes
 *    back), holds at most OVL_HOSTCACHE_MAX entries, no node twice, and
 *    every node id is the hash of its key;
 *  - the cache stays consistent under the operations a node performs on
 *    it afterwards (add, fail, succeed, remove), and what it then saves
 *    loads again.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; otherwise
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_hostcache (made
 * by ovl_dir_seeds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ovl_dir_common.h"
#include "ovl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FILE_MAX = sizeof(struct ovl_hcw_head) +
                  OVL_HOSTCACHE_MAX * sizeof(struct ovl_hcw_entry) };

static void check_consistent(const struct ovl_hostcache *hc)
{
    uint8_t id[OVL_NODE_ID_LEN];

    FZD_CHECK(hc->n <= OVL_HOSTCACHE_MAX);
    for (int i = 0; i < hc->n; i++) {
        ovl_node_id(id, hc->e[i].c.identity);
        FZD_CHECK(memcmp(id, hc->e[i].c.node_id, sizeof(id)) == 0);
        FZD_CHECK(ovl_hc_find(hc, id) == &hc->e[i]);
        for (int j = i + 1; j < hc->n; j++)
            FZD_CHECK(memcmp(hc->e[i].c.node_id, hc->e[j].c.node_id,
                             OVL_NODE_ID_LEN) != 0);
    }
}

/* A contact derived from a byte of the input. */
static void contact_of(struct ovl_contact *c, uint8_t b)
{
    memset(c, 0, sizeof(*c));
    memset(c->identity, b, sizeof(c->identity));
    ovl_node_id(c->node_id, c->identity);
    ovl_addr_v4(&c->udp, 0x0B000000u | b, (uint16_t)(4000 + b));
    c->tcp_port = 4000;
}

/* Runs a few node-like operations chosen by the input's first bytes. */
static void operate(struct ovl_hostcache *hc, const uint8_t *ops, size_t n)
{
    struct ovl_contact c;

    for (size_t i = 0; i < n && i < 16; i++) {
        contact_of(&c, ops[i]);
        switch (ops[i] & 3) {
        case 0:
            ovl_hc_add(hc, &c, ops[i]);
            break;
        case 1:
            ovl_hc_failed(hc, hc->n ? hc->e[ops[i] % hc->n].c.node_id
                                    : c.node_id);
            break;
        case 2:
            ovl_hc_ok(hc, c.node_id, 1000u + ops[i]);
            break;
        default:
            ovl_hc_remove(hc, hc->n ? hc->e[ops[i] % hc->n].c.node_id
                                    : c.node_id);
            break;
        }
        FZD_CHECK(hc->n <= OVL_HOSTCACHE_MAX);
    }
    check_consistent(hc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ovl_hostcache hc, before, again;
    static uint8_t file[FILE_MAX + 64], out[FILE_MAX];
    struct ovl_contact c;
    int rc, len;

    (void)fzd_world();
    if (size > sizeof(file))
        return 0;
    memcpy(file, data, size);
    /* A cache with something in it, to see that a refusal keeps it. */
    ovl_hc_init(&hc);
    contact_of(&c, 0xEE);
    ovl_hc_add(&hc, &c, 77);
    before = hc;

    rc = ovl_hc_load(&hc, file, size);
    if (rc != 0) {
        FZD_CHECK(rc == -EBADMSG);
        FZD_CHECK(memcmp(&hc, &before, sizeof(hc)) == 0);
        return 0;
    }
    check_consistent(&hc);
    FZD_CHECK(ovl_hc_save_size(&hc) == size);
    len = ovl_hc_save(&hc, out, sizeof(out));
    FZD_CHECK(len == (int)size && memcmp(out, file, size) == 0);

    operate(&hc, file + (size > 20 ? 20 : 0), size > 20 ? size - 20 : 0);
    len = ovl_hc_save(&hc, out, sizeof(out));
    FZD_CHECK(len > 0);
    FZD_CHECK(ovl_hc_load(&again, out, (size_t)len) == 0);
    FZD_CHECK(again.n == hc.n);
    return 0;
}
