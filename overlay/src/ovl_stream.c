/*
 * ovl_stream.c: RFC 4571 de-framing. See ovl_stream.h.
 */
#include "ovl_stream.h"

#include <errno.h>
#include <string.h>

int ovl_stream_init(struct ovl_stream *st, uint8_t *buf, size_t cap)
{
    if (st == NULL || buf == NULL || cap == 0 || cap > OVL_STREAM_MAX)
        return -EINVAL;
    memset(st, 0, sizeof(*st));
    st->buf = buf;
    st->cap = cap;
    return 0;
}

int ovl_stream_feed(struct ovl_stream *st, const uint8_t *data, size_t len,
                    size_t *consumed, const uint8_t **msg, size_t *msg_len)
{
    size_t used = 0, take;

    *consumed = 0;
    if (st->failed)
        return -EMSGSIZE;
    while (used < len) {
        /* 1. The length prefix, possibly split across calls. */
        if (st->prefix_have < OVL_STREAM_PREFIX) {
            st->prefix[st->prefix_have++] = data[used++];
            if (st->prefix_have < OVL_STREAM_PREFIX)
                continue;
            st->need = (size_t)st->prefix[0] << 8 | st->prefix[1];
            st->have = 0;
            if (st->need > st->cap) {
                st->oversize++;
                st->failed = true;
                *consumed = used;
                return -EMSGSIZE;
            }
            if (st->need == 0) {
                st->empty++;
                st->prefix_have = 0;
                continue;
            }
        }
        /* 2. The body: straight from @data when nothing is buffered and it
         * is all there; else accumulate. */
        if (st->have == 0 && len - used >= st->need) {
            *msg = data + used;
            *msg_len = st->need;
            used += st->need;
        } else {
            take = st->need - st->have;
            if (take > len - used)
                take = len - used;
            memcpy(st->buf + st->have, data + used, take);
            st->have += take;
            used += take;
            if (st->have < st->need)
                break;
            *msg = st->buf;
            *msg_len = st->need;
        }
        st->prefix_have = 0;
        st->have = 0;
        st->messages++;
        *consumed = used;
        return 1;
    }
    *consumed = used;
    return 0;
}

int ovl_stream_frame(uint8_t *out, size_t cap, const uint8_t *msg,
                     size_t len)
{
    if (len > OVL_STREAM_MAX)
        return -EMSGSIZE;
    if (cap < len + OVL_STREAM_PREFIX)
        return -ENOBUFS;
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    memmove(out + OVL_STREAM_PREFIX, msg, len);
    return (int)(len + OVL_STREAM_PREFIX);
}
