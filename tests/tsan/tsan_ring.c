/*
 * tsan_ring.c: stress of mix_ring with a real producer and a real consumer
 * thread, for ThreadSanitizer (CI builds it with -fsanitize=thread) and as
 * a plain test in every other build.
 *
 * A plain program rather than a Criterion test: Criterion 2.4 cannot start
 * under TSan ("Could not initialize inheritable arena").
 *
 * The producer pushes @records records of pseudo-random length (0 to a bit
 * over a quarter of the ring, so records wrap around the end of the storage
 * in every possible way and the ring is often full) through a small ring;
 * the consumer pops them and checks that each arrives whole, in order and
 * with the bytes the producer wrote. Both sides derive a record's length
 * and bytes from its index alone, so nothing else is shared between the
 * threads but the ring. Half the pushes use the two-part mix_ring_push2,
 * and the consumer peeks at the length before some pops. Neither side
 * blocks: a full or empty ring means sched_yield and retry.
 *
 * Usage: tsan_ring [RECORDS]   (default 2,000,000). Exit status 0 when
 * every record arrived intact, 1 otherwise (with a message on stderr).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix_ring.h"

enum {
    RING_BYTES = 16384,         /* small: full and wrapped all the time */
    MAX_REC = 1500,             /* longest record, bytes (an MTU) */
    HDR = 8,                    /* index at the start of a record >= 8 bytes */
    DEFAULT_RECORDS = 2000000,
    PATTERN = 1 << 16,          /* bytes records are cut from */
    MAX_ERRORS = 10,            /* messages printed before going quiet */
};

struct shared {
    struct mix_ring ring;
    uint64_t records;           /* to send; read-only once threads start */
    _Atomic bool failed;        /* the consumer gave up: producer stops */
};

/* Thread: any. SplitMix64: the bytes of record @i come from its index. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t rec_len(uint64_t i)
{
    uint64_t r = mix64(i);

    /* Mostly short records (like packets), some long, some empty. */
    switch (r & 3) {
    case 0:
        return (uint32_t)(r >> 8) % 16;
    case 1:
    case 2:
        return (uint32_t)(r >> 8) % 200;
    default:
        return (uint32_t)(r >> 8) % (MAX_REC + 1);
    }
}

/* Random bytes, written before the threads start and only read after. */
static uint8_t pattern[PATTERN];

static void pattern_init(void)
{
    for (uint32_t k = 0; k < PATTERN; k += 8) {
        uint64_t x = mix64(k);
        memcpy(pattern + k, &x, 8);
    }
}

/* Fills @buf with record @i: its index (when it fits), then bytes from a
 * place in the pattern that depends on the index. (One memcpy rather than
 * a loop over bytes: TSan checks a memcpy as one range, which keeps the run
 * short.) */
static void rec_fill(uint8_t *buf, uint64_t i, uint32_t len)
{
    memcpy(buf, pattern + mix64(i ^ 0x5555555555555555ull) % (PATTERN - MAX_REC), len);
    if (len >= HDR)
        memcpy(buf, &i, HDR);
}

static void *producer(void *arg)
{
    struct shared *s = arg;
    uint8_t buf[MAX_REC];

    for (uint64_t i = 0; i < s->records; i++) {
        uint32_t len = rec_len(i);
        uint32_t split = len / 3;
        int rc;

        rec_fill(buf, i, len);
        for (;;) {
            if (i & 1)
                rc = mix_ring_push2(&s->ring, buf, split, buf + split, len - split);
            else
                rc = mix_ring_push(&s->ring, buf, len);
            if (rc == 0)
                break;
            if (rc != -ENOSPC) {
                fprintf(stderr, "tsan_ring: push of record %llu (%u bytes): %d\n",
                        (unsigned long long)i, len, rc);
                atomic_store(&s->failed, true);
                return NULL;
            }
            if (atomic_load_explicit(&s->failed, memory_order_relaxed))
                return NULL;
            sched_yield();
        }
    }
    return NULL;
}

/* Thread: consumer. Returns the number of bad records seen. */
static uint64_t consume(struct shared *s)
{
    uint8_t got[MAX_REC], want[MAX_REC];
    uint64_t errors = 0;

    for (uint64_t i = 0; i < s->records;) {
        uint32_t len = rec_len(i);
        int32_t n;

        if (i % 7 == 0) {
            n = mix_ring_peek_len(&s->ring);
            if (n >= 0 && (uint32_t)n != len) {
                if (errors < MAX_ERRORS)
                    fprintf(stderr, "tsan_ring: record %llu: peek says %d bytes, want %u\n",
                            (unsigned long long)i, n, len);
                errors++;
            }
        }
        n = mix_ring_pop(&s->ring, got, sizeof(got));
        if (n == -EAGAIN) {
            if (atomic_load(&s->failed))
                return errors + 1;
            sched_yield();
            continue;
        }
        rec_fill(want, i, len);
        if (n != (int32_t)len || memcmp(got, want, len) != 0) {
            if (errors < MAX_ERRORS) {
                uint64_t idx = 0;
                if (n >= HDR)
                    memcpy(&idx, got, HDR);
                fprintf(stderr, "tsan_ring: record %llu: got %d bytes (index %llu), want %u\n",
                        (unsigned long long)i, n, (unsigned long long)idx, len);
            }
            errors++;
            if (errors >= MAX_ERRORS * 100) {
                atomic_store(&s->failed, true);
                return errors;
            }
        }
        i++;
    }
    if (mix_ring_pop(&s->ring, got, sizeof(got)) != -EAGAIN) {
        fprintf(stderr, "tsan_ring: a record beyond the last one\n");
        errors++;
    }
    return errors;
}

int main(int argc, char **argv)
{
    static uint8_t storage[RING_BYTES];
    static struct shared s;
    pthread_t tid;
    uint64_t errors;
    int rc;

    s.records = DEFAULT_RECORDS;
    if (argc > 1) {
        char *end;
        s.records = strtoull(argv[1], &end, 10);
        if (*end || s.records == 0) {
            fprintf(stderr, "usage: tsan_ring [RECORDS]\n");
            return 2;
        }
    }
    if (mix_ring_init(&s.ring, storage, sizeof(storage)) != 0) {
        fprintf(stderr, "tsan_ring: mix_ring_init failed\n");
        return 1;
    }
    atomic_init(&s.failed, false);
    pattern_init();
    rc = pthread_create(&tid, NULL, producer, &s);
    if (rc) {
        fprintf(stderr, "tsan_ring: pthread_create: %s\n", strerror(rc));
        return 1;
    }
    errors = consume(&s);
    pthread_join(tid, NULL);
    if (errors) {
        fprintf(stderr, "tsan_ring: %llu bad records of %llu\n",
                (unsigned long long)errors, (unsigned long long)s.records);
        return 1;
    }
    printf("tsan_ring: %llu records of 0..%u bytes through a %u-byte ring, all intact\n",
           (unsigned long long)s.records, (unsigned)MAX_REC, (unsigned)RING_BYTES);
    return 0;
}
