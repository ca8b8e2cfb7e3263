/*
 * fuzz_api_schema.c: libFuzzer target for the api module's request
 * validation: the schema tables (api__schema_check) and the URL matcher
 * (api__route_match), the two places untrusted request bytes meet code.
 *
 * Input: the first byte selects what to fuzz. With its top bit clear it
 * picks one of the routes' body schemas (modulo their number) and the
 * rest is the JSON body; with it set, the rest is a URL path and the low
 * bits pick the method.
 *
 * Beyond "no crash, no leak, no sanitizer report" it checks invariants
 * and abort()s when one breaks (this is a test, not request handling):
 *  - an accepted body, defaults filled in, is accepted again unchanged;
 *  - a refusal always carries a detail sentence;
 *  - a matched route's parameters are valid by the same rules the
 *    validator uses.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with any
 * compiler, fuzz_replay.c turns it into a program that replays a corpus
 * (registered with CTest over tests/fuzz/corpus/api_schema).
 */
#include "api_routes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct api_schema *pick_schema(unsigned sel)
{
    const struct api_schema *list[16];
    size_t n = 0;

    for (size_t i = 0; i < api__n_routes && n < 16; i++) {
        if (api__routes[i].schema)
            list[n++] = api__routes[i].schema;
    }
    return n ? list[sel % n] : NULL;
}

static void fuzz_body(unsigned sel, const uint8_t *data, size_t size)
{
    const struct api_schema *sch = pick_schema(sel);
    struct api_schema_error err;
    json_t *body, *out = NULL, *again = NULL;
    int rc;

    if (!sch)
        return;
    body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!body)
        return;
    rc = api__schema_check(sch, body, &out, &err);
    if (rc == 0) {
        if (!json_is_object(out) || api__schema_check(sch, out, &again, &err) != 0 ||
            !json_equal(out, again))
            abort();
    } else if (!memchr(err.detail, '\0', sizeof(err.detail)) || !err.detail[0] ||
               !memchr(err.field, '\0', sizeof(err.field))) {
        abort();
    }
    json_decref(again);
    json_decref(out);
    json_decref(body);
}

static void fuzz_url(unsigned sel, const uint8_t *data, size_t size)
{
    static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "PUT" };
    struct api_match m;
    char *url = malloc(size + 1);

    if (!url)
        return;
    memcpy(url, data, size);
    url[size] = '\0';
    if (api__route_match(methods[sel % 5], url, &m) == 0) {
        if (!m.route)
            abort();
        if (strstr(m.route->path, "{room}") && !api__room_name_valid(m.room))
            abort();
        if (strstr(m.route->path, "{id}") && m.participant == 0)
            abort();
    }
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        fuzz_url(data[0] & 0x7F, data + 1, size - 1);
    else
        fuzz_body(data[0], data + 1, size - 1);
    return 0;
}
