/*
 * ovl_test_util.h: small helpers shared by the overlay tests.
 */
#ifndef OVL_TEST_UTIL_H
#define OVL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Parses lowercase/uppercase hex into @out; returns the byte count. */
static inline size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;

    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

#endif /* OVL_TEST_UTIL_H */
