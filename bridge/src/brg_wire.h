/*
 * brg_wire.h: big-endian load/store helpers shared by the RTP and RTCP
 * codecs (private to bridge/src). Byte-wise, so alignment never matters.
 *
 * Thread: any (pure functions).
 */
#ifndef BRG_WIRE_H
#define BRG_WIRE_H

#include <stdint.h>

/* Reads a big-endian 16-bit value at @p. */
static inline uint16_t brg__get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Reads a big-endian 32-bit value at @p. */
static inline uint32_t brg__get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* Writes @v big-endian at @p. */
static inline void brg__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Writes @v big-endian at @p. */
static inline void brg__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif /* BRG_WIRE_H */
