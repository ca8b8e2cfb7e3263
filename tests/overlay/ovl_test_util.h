/*
 * ovl_test_util.h: small helpers shared by the overlay tests.
 */
#ifndef OVL_TEST_UTIL_H
#define OVL_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ovl_identity.h"
#include "ovl_msg.h"

/* Parses lowercase/uppercase hex into @out; returns the byte count. */
static inline size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;

    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* A deterministic contact from @seed (identity, IPv4 or IPv6 address,
 * ports, flags), for encoding tables and fuzz seeds. */
static inline void contact(struct ovl_contact *c, uint8_t seed, bool v6)
{
    memset(c, 0, sizeof(*c));
    memset(c->identity, seed, sizeof(c->identity));
    ovl_node_id(c->node_id, c->identity);
    if (v6) {
        c->udp.family = OVL_AF_INET6;
        for (int i = 0; i < 16; i++)
            c->udp.ip[i] = (uint8_t)(seed + i);
    } else {
        ovl_addr_v4(&c->udp, 0x0A000000u | seed, 4000);
    }
    c->udp.port = (uint16_t)(4000 + seed);
    c->tcp_port = (uint16_t)(5000 + seed);
    c->flags = seed & 1 ? OVL_CF_TCP443 : 0;
}

#endif /* OVL_TEST_UTIL_H */
