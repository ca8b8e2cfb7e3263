/*
 * ovl_uv.h: the libuv glue shared by everything that drives the sans-I/O
 * overlay code over real sockets (the bridge, chorus-client, the load
 * generator): receive buffers and framed writes of secure-session messages
 * on TCP streams (RFC 4571 two-byte prefix, ovl_stream.h).
 *
 * Thread: the libuv loop that owns the handles.
 */
#ifndef OVL_UV_H
#define OVL_UV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A uv_alloc_cb handing out one static 64 KiB slab. Valid because a loop
 * is single-threaded and every read is consumed before the next one; only
 * for loops that run on one thread at a time. */
void ovl_uv_alloc_slab(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* Queues @msg on @stream with its two-byte length prefix. The copy is
 * freed when written. When more than @max_queued bytes already wait in the
 * stream's write queue the message is dropped (-ENOBUFS): real-time media
 * is better lost than late. Returns 0 or a negative errno. */
int ovl_uv_write_framed(uv_stream_t *stream, const uint8_t *msg, size_t len,
                        size_t max_queued);

#endif /* OVL_UV_H */
