/*
 * mix_ring.c: SPSC ring of variable-length records. See mix_ring.h for the
 * contract. Indices run freely and wrap at 2^32; the difference head - tail
 * is the fill level because size is a power of two that divides 2^32.
 */
#include "mix_ring.h"

#include <errno.h>
#include <string.h>

int mix_ring_init(struct mix_ring *r, void *buf, uint32_t size)
{
    if (size < 64 || (size & (size - 1)) != 0 || size > (1u << 30))
        return -EINVAL;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->buf = buf;
    r->size = size;
    r->mask = size - 1;
    return 0;
}

/* Copies @len bytes into the storage at free-running index @idx, split at
 * the end of the storage if needed. */
static void ring_write(struct mix_ring *r, uint32_t idx, const void *src,
                       uint32_t len)
{
    uint32_t off = idx & r->mask;
    uint32_t first = r->size - off;

    if (first > len)
        first = len;
    memcpy(r->buf + off, src, first);
    if (len > first)
        memcpy(r->buf, (const uint8_t *)src + first, len - first);
}

static void ring_read(const struct mix_ring *r, uint32_t idx, void *dst,
                      uint32_t len)
{
    uint32_t off = idx & r->mask;
    uint32_t first = r->size - off;

    if (first > len)
        first = len;
    memcpy(dst, r->buf + off, first);
    if (len > first)
        memcpy((uint8_t *)dst + first, r->buf, len - first);
}

uint32_t mix_ring_used(const struct mix_ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return head - tail;
}

bool mix_ring_can_push(const struct mix_ring *r, uint32_t len)
{
    return (uint64_t)mix_ring_used(r) + MIX_RING_HDR + len <= r->size;
}

int mix_ring_push2(struct mix_ring *r, const void *a, uint32_t alen,
                   const void *b, uint32_t blen)
{
    uint32_t len = alen + blen;
    uint32_t head, tail;

    if (len > MIX_RING_MAX_RECORD || len + MIX_RING_HDR > r->size)
        return -EMSGSIZE;
    /* Only this thread writes head, so a relaxed load of it is exact; the
     * acquire on tail pairs with the consumer's release after its copy. */
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if ((uint64_t)(head - tail) + MIX_RING_HDR + len > r->size)
        return -ENOSPC;

    ring_write(r, head, &len, MIX_RING_HDR);
    ring_write(r, head + MIX_RING_HDR, a, alen);
    if (blen)
        ring_write(r, head + MIX_RING_HDR + alen, b, blen);
    /* Publish: the consumer's acquire of head sees the bytes above. */
    atomic_store_explicit(&r->head, head + MIX_RING_HDR + len,
                          memory_order_release);
    return 0;
}

int32_t mix_ring_peek_len(struct mix_ring *r)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t len;

    if (head == tail)
        return -EAGAIN;
    ring_read(r, tail, &len, MIX_RING_HDR);
    return (int32_t)len;
}

int32_t mix_ring_pop(struct mix_ring *r, void *out, uint32_t cap)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t len;
    int32_t ret;

    if (head == tail)
        return -EAGAIN;
    ring_read(r, tail, &len, MIX_RING_HDR);
    if (len > cap) {
        ret = -EMSGSIZE;
    } else {
        ring_read(r, tail + MIX_RING_HDR, out, len);
        ret = (int32_t)len;
    }
    atomic_store_explicit(&r->tail, tail + MIX_RING_HDR + len,
                          memory_order_release);
    return ret;
}
