/*
 * fuzz_ovl_node_common.h: the input format of fuzz_ovl_node, shared with
 * the seed generator (ovl_dir_seeds.c).
 *
 * An input is a sequence of steps, each
 *   ctl (1 byte) | length (LE16) | payload (length bytes)
 * where ctl says who sends the payload, how, and when:
 *   bits 0-1  sender: A and B (peers), S (a supernode), X (a stranger)
 *   bit 2     over the sender's TCP connection (accepted on first use)
 *             instead of UDP
 *   bit 3     raw: the payload is the datagram or the stream bytes as
 *             they are; otherwise it is one overlay message, sent in a
 *             plaintext frame (and TCP framing) from the sender's key
 *   bits 4-7  time that passes first (fzn_advance[], up to 4 minutes),
 *             then the node's due timers run
 * A truncated last step is dropped.
 */
#ifndef FUZZ_OVL_NODE_COMMON_H
#define FUZZ_OVL_NODE_COMMON_H

#include <stdint.h>

#include "ovl_secure.h"

enum {
    FZN_FROM_A = 0,
    FZN_FROM_B = 1,
    FZN_FROM_S = 2,
    FZN_FROM_X = 3,
    FZN_TCP = 0x04,
    FZN_RAW = 0x08,
};

#define FZN_ADVANCE(i) ((uint8_t)((i) << 4))

#define FZN_MS (OVL_NS_PER_SEC / 1000)
static const uint64_t fzn_advance[16] = {
    0,           1 * FZN_MS,  10 * FZN_MS,           100 * FZN_MS,
    1000 * FZN_MS, 2 * OVL_NS_PER_SEC, 5 * OVL_NS_PER_SEC,
    11 * OVL_NS_PER_SEC,      20 * OVL_NS_PER_SEC,   30 * OVL_NS_PER_SEC,
    61 * OVL_NS_PER_SEC,      101 * OVL_NS_PER_SEC,  121 * OVL_NS_PER_SEC,
    240 * OVL_NS_PER_SEC,     400 * FZN_MS,          3 * FZN_MS,
};

#endif /* FUZZ_OVL_NODE_COMMON_H */
