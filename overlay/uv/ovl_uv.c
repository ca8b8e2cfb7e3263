/*
 * ovl_uv.c: see ovl_uv.h.
 */
#include "ovl_uv.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "ovl_stream.h"

void ovl_uv_alloc_slab(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[65536];

    (void)h;
    (void)hint;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

int ovl_uv_write_framed(uv_stream_t *stream, const uint8_t *msg, size_t len,
                        size_t max_queued)
{
    uv_write_t *req;
    uv_buf_t buf;
    int n;

    if (uv_stream_get_write_queue_size(stream) > max_queued)
        return -ENOBUFS;
    /* One allocation: the request, then the framed copy behind it. */
    req = malloc(sizeof(*req) + OVL_STREAM_PREFIX + len);
    if (!req)
        return -ENOMEM;
    n = ovl_stream_frame((uint8_t *)(req + 1), OVL_STREAM_PREFIX + len, msg, len);
    if (n < 0) {
        free(req);
        return n;
    }
    buf = uv_buf_init((char *)(req + 1), (unsigned)n);
    n = uv_write(req, stream, &buf, 1, on_written);
    if (n)
        free(req);
    return n;
}

int ovl_uv_udp_buffers(uv_udp_t *udp, int bytes, int *granted)
{
    uv_os_fd_t fd;
    socklen_t len = sizeof(*granted);
    int rc = uv_fileno((uv_handle_t *)udp, &fd);

    if (rc)
        return rc;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, &len) != 0)
        return -errno;
    return 0;
}

void ovl_uv_alloc_mmsg(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    /* libuv splits the buffer into 64 KiB datagram slots. */
    static char slab[16 * 65536];

    (void)h;
    (void)hint;
    buf->base = slab;
    buf->len = sizeof(slab);
}
