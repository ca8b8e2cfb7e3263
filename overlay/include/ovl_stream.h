/*
 * ovl_stream.h: RFC 4571 framing for secure-session messages over TCP.
 *
 * Each message is preceded by its length as a 2-byte big-endian integer.
 * The de-framer takes whatever bytes the socket produced (any split, any
 * coalescing) and returns whole messages; it never reads past what it was
 * given and never holds more than the caller's buffer. A length prefix
 * larger than that buffer fails the stream for good (the caller closes the
 * connection: there is no way to resynchronise a byte stream). Zero-length
 * frames carry nothing and are skipped (counted).
 *
 * Thread: loop; one de-framer per connection.
 */
#ifndef OVL_STREAM_H
#define OVL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OVL_STREAM_PREFIX = 2,
    OVL_STREAM_MAX = 65535, /* largest length a prefix can give */
};

struct ovl_stream {
    /* read-only for the caller: counters */
    uint64_t messages;   /* whole messages returned */
    uint64_t empty;      /* zero-length frames skipped */
    uint64_t oversize;   /* length prefixes over the limit (then failed) */

    /* private */
    uint8_t *buf;        /* caller's storage: cap bytes */
    size_t cap;          /* largest message accepted */
    size_t need;         /* length of the message being read */
    size_t have;         /* bytes of it buffered */
    uint8_t prefix[OVL_STREAM_PREFIX];
    uint8_t prefix_have;
    bool failed;
};

/* Sets up @st over @buf of @cap bytes (1..OVL_STREAM_MAX): the largest
 * message it will accept. Returns 0 or -EINVAL. */
int ovl_stream_init(struct ovl_stream *st, uint8_t *buf, size_t cap);

/*
 * Feeds @len bytes of @data. Consumes bytes until one whole message is
 * available or @data runs out, and stores in *consumed how many it used.
 * Returns
 *   1  a message is ready: *msg and *msg_len give it, either inside @data
 *      (when it arrived in one piece: no copy) or inside the buffer; valid
 *      until the next call. Call again with the rest of @data;
 *   0  all of @data was consumed and no message is complete yet;
 *  -EMSGSIZE  a length prefix exceeded the limit: the stream has failed
 *      and every later call returns this too.
 */
int ovl_stream_feed(struct ovl_stream *st, const uint8_t *data, size_t len,
                    size_t *consumed, const uint8_t **msg, size_t *msg_len);

/* Writes the 2-byte prefix and @msg into @out. Returns the total length,
 * or -EMSGSIZE (@len over OVL_STREAM_MAX) / -ENOBUFS (@cap too small). */
int ovl_stream_frame(uint8_t *out, size_t cap, const uint8_t *msg,
                     size_t len);

#endif /* OVL_STREAM_H */
