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

/* Asks for @bytes of kernel receive and send buffer on a UDP socket: a
 * bridge's shared media port takes tens of thousands of datagrams a second
 * and the default (about 200 KiB, a few ms of traffic) overflows while the
 * loop is busy sending. Tries SO_RCVBUFFORCE/SO_SNDBUFFORCE (root or
 * CAP_NET_ADMIN, beyond net.core.rmem_max), then the plain options. Stores
 * the receive size the kernel granted (it reports twice what it books) in
 * *granted. Returns 0 or a negative errno. */
int ovl_uv_udp_buffers(uv_udp_t *udp, int bytes, int *granted);

/* A uv_alloc_cb for sockets opened with UV_UDP_RECVMMSG: one static slab
 * that holds 16 datagrams, so each wake-up reads up to 16 with one
 * recvmmsg(2). Same single-thread rule as ovl_uv_alloc_slab. */
void ovl_uv_alloc_mmsg(uv_handle_t *h, size_t hint, uv_buf_t *buf);

#endif /* OVL_UV_H */
