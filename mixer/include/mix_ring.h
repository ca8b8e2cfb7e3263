/*
 * mix_ring.h: a lock-free single-producer / single-consumer ring of
 * variable-length records, in the manner of SPA's ringbuffer.
 *
 * Two free-running 32-bit indices, one written only by the producer and one
 * only by the consumer, with acquire/release ordering. The ring does not own
 * its storage: the caller hands in a power-of-two buffer once at init.
 *
 * A record is a 4-byte length followed by its bytes; it may wrap around the
 * end of the storage (the copy is split). Records are all-or-nothing: a push
 * that does not fit fails and leaves the ring unchanged, so a full ring loses
 * the newest record, never a torn one.
 *
 * Thread: exactly one producer thread calls the push functions and exactly
 * one consumer thread calls the pop/peek functions. Either side may read the
 * fill level. Nothing here allocates, locks or makes a syscall, so both ends
 * are safe on the real-time thread.
 */
#ifndef MIX_RING_H
#define MIX_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    MIX_RING_HDR = 4,            /* bytes of length prefix per record */
    MIX_RING_MAX_RECORD = 65536, /* largest record payload accepted */
};

struct mix_ring {
    /* Producer-owned write index; the padding keeps the two indices on
     * separate cache lines so the two threads do not false-share. */
    _Alignas(64) _Atomic uint32_t head;
    /* Consumer-owned read index. */
    _Alignas(64) _Atomic uint32_t tail;
    /* Read-only after init. */
    _Alignas(64) uint8_t *buf;
    uint32_t size; /* power of two */
    uint32_t mask; /* size - 1 */
};

/*
 * Sets up @r over @buf of @size bytes. @size must be a power of two of at
 * least 64 bytes. Returns 0, or -EINVAL for a bad size.
 */
int mix_ring_init(struct mix_ring *r, void *buf, uint32_t size);

/*
 * Producer: appends one record made of @a (@alen bytes) followed by @b
 * (@blen bytes; @b may be NULL when @blen is 0). Two parts let a caller push a
 * fixed header and a payload without first copying them together.
 * Returns 0, -ENOSPC when the record does not fit now, or -EMSGSIZE when it
 * could never fit.
 */
int mix_ring_push2(struct mix_ring *r, const void *a, uint32_t alen,
                   const void *b, uint32_t blen);

static inline int mix_ring_push(struct mix_ring *r, const void *data,
                                uint32_t len)
{
    return mix_ring_push2(r, data, len, NULL, 0);
}

/*
 * Consumer: the length of the next record, or -EAGAIN when the ring is empty.
 */
int32_t mix_ring_peek_len(struct mix_ring *r);

/*
 * Consumer: copies the next record into @out (capacity @cap) and removes it.
 * Returns the record length, -EAGAIN when empty, or -EMSGSIZE when @cap is
 * too small; in that case the record is dropped, so a single oversized record
 * can never wedge the ring.
 */
int32_t mix_ring_pop(struct mix_ring *r, void *out, uint32_t cap);

/* Either side: bytes currently queued, including record headers. */
uint32_t mix_ring_used(const struct mix_ring *r);

/* Producer side hint: true when a record of @len bytes would fit now. */
bool mix_ring_can_push(const struct mix_ring *r, uint32_t len);

#endif /* MIX_RING_H */
