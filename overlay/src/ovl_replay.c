/*
 * ovl_replay.c: the DATA replay window. This is RFC 6479's bitmap
 * algorithm, in the form WireGuard's receive.c gives it (counter_validate):
 * the bitmap is a ring of 64-bit words; moving the window forward clears
 * whole words instead of shifting bits. Counters are handled as counter+1
 * so that a zeroed window has seen nothing.
 *
 * With OVL_REPLAY_BITS = 2048 the window is 2048 - 64 = 1984 counters: a
 * counter that far behind the greatest one seen is judged exactly; older
 * ones are rejected (the last word is shared with the newest counters).
 */
#include "ovl_internal.h"

enum {
    WORDS = OVL_REPLAY_BITS / 64,
    WORD_SHIFT = 6,
};
_Static_assert((WORDS & (WORDS - 1)) == 0, "ring of words: power of two");

void ovl_replay_init(struct ovl_replay *r)
{
    memset(r, 0, sizeof(*r));
}

bool ovl_replay_check(struct ovl_replay *r, uint64_t counter)
{
    uint64_t index, index_cur, top, bit;

    if (r->next >= OVL_REJECT_AFTER_MESSAGES + 1 ||
        counter >= OVL_REJECT_AFTER_MESSAGES)
        return false;
    ++counter;
    /* Too far behind the window (no overflow: counter < 2^64 - window). */
    if (counter + OVL_REPLAY_WINDOW < r->next)
        return false;
    index = counter >> WORD_SHIFT;
    if (counter > r->next) {
        /* Slide forward: clear the words between the old top and the new
         * one (all of them, at most, after a big jump). */
        index_cur = r->next >> WORD_SHIFT;
        top = ovl__min(index - index_cur, WORDS);
        for (uint64_t i = 1; i <= top; i++)
            r->bitmap[(i + index_cur) & (WORDS - 1)] = 0;
        r->next = counter;
    }
    index &= WORDS - 1;
    bit = 1ull << (counter & 63);
    if (r->bitmap[index] & bit)
        return false;
    r->bitmap[index] |= bit;
    return true;
}
