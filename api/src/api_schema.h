/*
 * api_schema.h: table-driven validation of JSON request bodies.
 *
 * Each route that takes a body has one struct api_schema: an array of
 * parameter specs in the manner of Janus's janus_json_parameter arrays,
 * but carrying ranges, allowed values and defaults too, so that one table
 * says everything about a field. The validator rejects unknown fields,
 * wrong types and out-of-range values, naming the offending field, and
 * returns a new object with the defaults filled in.
 *
 * Thread: any (pure functions over immutable tables).
 */
#ifndef API_SCHEMA_H
#define API_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum api_ptype {
    API_T_BOOL = 1,
    API_T_INT,          /* a JSON integer (1.0 is not one) */
    API_T_NUMBER,       /* a JSON integer or real */
    API_T_STRING,
    API_T_INT_ARRAY,    /* an array of JSON integers */
};

enum api_pflags {
    API_PF_REQUIRED = 1 << 0,
};

/* Extra syntax check for a string value. Returns true when @s is valid;
 * otherwise writes a short reason (no trailing period) into @why. */
typedef bool (*api_string_check_fn)(const char *s, char *why, size_t why_len);

struct api_param {
    const char *name;
    enum api_ptype type;
    unsigned flags;                  /* enum api_pflags */
    /* API_T_INT: value range; API_T_STRING: length range in code points;
     * API_T_INT_ARRAY: range of each element. */
    int64_t min, max;
    double fmin, fmax;               /* API_T_NUMBER: value range */
    const int64_t *one_of;           /* API_T_INT: the only values allowed */
    size_t n_one_of;
    const char *const *choices;      /* API_T_STRING: allowed values, NULL-ended */
    api_string_check_fn check;       /* API_T_STRING: extra syntax check */
    size_t max_items;                /* API_T_INT_ARRAY: longest array */
    const char *def;                 /* default as JSON text, or NULL */
};

enum {
    API_FIELD_MAX = 64,              /* longest field name reported (with NUL) */
    API_DETAIL_MAX = 192,            /* longest detail sentence (with NUL) */
};

/* Why a body was refused. field is empty when no single field is at fault. */
struct api_schema_error {
    char field[API_FIELD_MAX];
    char detail[API_DETAIL_MAX];
};

struct api_schema {
    const char *name;                /* e.g. "RoomCreate", as in docs/openapi.json */
    const struct api_param *params;
    size_t n_params;
    bool at_least_one;               /* PATCH: an empty object is refused */
    /* Runs on the validated copy, defaults applied: cross-field defaults
     * (a codec's payload type). Returns 0, or -EINVAL with @err filled. */
    int (*fixup)(json_t *body, struct api_schema_error *err);
};

/* Validates @body against @sch. On success returns 0 and stores in *out a
 * new object (the caller owns the reference) holding the body's fields
 * plus the defaults of absent ones. Returns -EBADMSG when @body is not a
 * JSON object (a 400), -EINVAL when a field is unknown, missing or invalid
 * (a 422; @err names it), or -ENOMEM. */
int api__schema_check(const struct api_schema *sch, const json_t *body,
                      json_t **out, struct api_schema_error *err);

/* Number of Unicode code points in the valid UTF-8 string @s (jansson only
 * hands out valid UTF-8). */
size_t api__utf8_len(const char *s);

#endif /* API_SCHEMA_H */
