/*
 * test_ring.c: the SPSC record ring. Single-thread edge cases, then a
 * two-thread stress test that moves millions of variable-length records and
 * checks that every one arrives, intact and in order. CI also runs this file
 * under TSan, which checks the acquire/release pairing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "mix_ring.h"

Test(ring, rejects_bad_sizes)
{
    static uint8_t buf[256];
    struct mix_ring r;

    cr_expect_eq(mix_ring_init(&r, buf, 0), -EINVAL);
    cr_expect_eq(mix_ring_init(&r, buf, 100), -EINVAL);
    cr_expect_eq(mix_ring_init(&r, buf, 32), -EINVAL);
    cr_expect_eq(mix_ring_init(&r, buf, 256), 0);
}

Test(ring, empty_full_and_all_or_nothing)
{
    static uint8_t buf[64];
    struct mix_ring r;
    uint8_t rec[40] = {1}, out[64];

    cr_assert_eq(mix_ring_init(&r, buf, sizeof(buf)), 0);
    cr_expect_eq(mix_ring_pop(&r, out, sizeof(out)), -EAGAIN);
    cr_expect_eq(mix_ring_peek_len(&r), -EAGAIN);
    cr_expect_eq(mix_ring_push(&r, rec, 61), -EMSGSIZE);
    cr_expect_eq(mix_ring_push(&r, rec, 40), 0);
    /* 44 of 64 bytes used: a 20-byte record (24 with header) no longer fits. */
    cr_expect_eq(mix_ring_push(&r, rec, 20), -ENOSPC);
    cr_expect_eq(mix_ring_used(&r), 44u);
    cr_expect_eq(mix_ring_push(&r, rec, 16), 0);
    cr_expect_eq(mix_ring_used(&r), 64u);
    cr_expect_eq(mix_ring_push(&r, NULL, 0), -ENOSPC);
    cr_expect_eq(mix_ring_peek_len(&r), 40);
    cr_expect_eq(mix_ring_pop(&r, out, sizeof(out)), 40);
    cr_expect_eq(out[0], 1);
    cr_expect_eq(mix_ring_pop(&r, out, sizeof(out)), 16);
    cr_expect_eq(mix_ring_used(&r), 0u);
}

Test(ring, records_wrap_around_the_end)
{
    static uint8_t buf[64];
    struct mix_ring r;
    uint8_t rec[30], out[30];

    cr_assert_eq(mix_ring_init(&r, buf, sizeof(buf)), 0);
    /* Walk the indices around the storage many times with a record size
     * that does not divide it, so records and headers split at every offset. */
    for (int i = 0; i < 1000; i++) {
        for (unsigned j = 0; j < sizeof(rec); j++)
            rec[j] = (uint8_t)(i * 7 + j);
        cr_assert_eq(mix_ring_push2(&r, rec, 10, rec + 10, 17), 0);
        memset(out, 0, sizeof(out));
        cr_assert_eq(mix_ring_pop(&r, out, sizeof(out)), 27);
        cr_assert_eq(memcmp(out, rec, 27), 0, "record %d corrupted", i);
    }
}

Test(ring, too_small_buffer_drops_record_not_ring)
{
    static uint8_t buf[128];
    struct mix_ring r;
    uint8_t rec[50] = {0}, out[8];

    cr_assert_eq(mix_ring_init(&r, buf, sizeof(buf)), 0);
    rec[0] = 9;
    cr_assert_eq(mix_ring_push(&r, rec, 50), 0);
    cr_assert_eq(mix_ring_push(&r, rec, 4), 0);
    cr_expect_eq(mix_ring_pop(&r, out, sizeof(out)), -EMSGSIZE);
    cr_expect_eq(mix_ring_pop(&r, out, sizeof(out)), 4);
    cr_expect_eq(out[0], 9);
}

/* ---- two-thread stress ---- */

enum { STRESS_ITEMS = 3000000, STRESS_RING = 4096 };

struct stress {
    struct mix_ring ring;
    uint8_t storage[STRESS_RING];
    uint64_t full_spins;
};

/* Record i is 8 bytes of i followed by (i % 23) bytes derived from i. */
static uint32_t fill_record(uint8_t *rec, uint64_t i)
{
    uint32_t extra = (uint32_t)(i % 23);

    memcpy(rec, &i, sizeof(i));
    for (uint32_t k = 0; k < extra; k++)
        rec[8 + k] = (uint8_t)(i + k);
    return 8 + extra;
}

static void *producer(void *arg)
{
    struct stress *s = arg;
    uint8_t rec[64];

    for (uint64_t i = 0; i < STRESS_ITEMS; i++) {
        uint32_t len = fill_record(rec, i);
        while (mix_ring_push(&s->ring, rec, len) == -ENOSPC) {
            s->full_spins++;
            sched_yield();
        }
    }
    return NULL;
}

Test(ring, two_thread_stress_keeps_order_and_loses_nothing, .timeout = 120)
{
    static struct stress s;
    pthread_t th;
    uint8_t rec[64], want[64];
    uint64_t got = 0, empty_spins = 0;

    cr_assert_eq(mix_ring_init(&s.ring, s.storage, STRESS_RING), 0);
    cr_assert_eq(pthread_create(&th, NULL, producer, &s), 0);
    while (got < STRESS_ITEMS) {
        int32_t n = mix_ring_pop(&s.ring, rec, sizeof(rec));
        if (n == -EAGAIN) {
            empty_spins++;
            sched_yield();
            continue;
        }
        uint32_t len = fill_record(want, got);
        cr_assert_eq((uint32_t)n, len, "record %lu: length %d, want %u",
                     (unsigned long)got, n, len);
        cr_assert_eq(memcmp(rec, want, len), 0, "record %lu corrupted or out of order",
                     (unsigned long)got);
        got++;
    }
    pthread_join(th, NULL);
    cr_expect_eq(mix_ring_pop(&s.ring, rec, sizeof(rec)), -EAGAIN);
    cr_expect_eq(got, (uint64_t)STRESS_ITEMS);
    cr_log_info("stress: %lu records, producer full-spins %lu, consumer empty-spins %lu",
                (unsigned long)got, (unsigned long)s.full_spins,
                (unsigned long)empty_spins);
}
