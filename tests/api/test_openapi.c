/*
 * test_openapi.c: docs/openapi.json against the code.
 *
 *  - every route in the document exists in the route table, and the
 *    reverse (method and path template);
 *  - every documented route answers (not 404, not 405) on a live server;
 *  - the request-body schemas agree with the validator's tables (field
 *    names, required fields, types, ranges, allowed values, defaults);
 *  - the public routes are exactly those with "security": [];
 *  - the server serves the document byte for byte.
 */
#include "api.h"
#include "api_routes.h"
#include "fake_backend.h"
#include "http_client.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHORUS_OPENAPI_PATH
#error "CHORUS_OPENAPI_PATH must name docs/openapi.json"
#endif

#define TOKEN "openapi-test-token"

static const char *const http_methods[] = { "get", "put", "post", "delete", "patch",
                                            "options", "head", "trace", NULL };

static json_t *load_doc(void)
{
    json_error_t err;
    json_t *doc = json_load_file(CHORUS_OPENAPI_PATH, JSON_REJECT_DUPLICATES, &err);

    cr_assert_not_null(doc, "%s:%d: %s", CHORUS_OPENAPI_PATH, err.line, err.text);
    return doc;
}

static void lower(char *dst, const char *src, size_t size)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static const struct api_route *code_route(const char *method_lc, const char *path)
{
    char m[16];

    for (size_t i = 0; i < api__n_routes; i++) {
        lower(m, api__routes[i].method, sizeof(m));
        if (strcmp(m, method_lc) == 0 && strcmp(api__routes[i].path, path) == 0)
            return &api__routes[i];
    }
    return NULL;
}

static json_t *doc_operation(json_t *doc, const struct api_route *rt)
{
    char m[16];

    lower(m, rt->method, sizeof(m));
    return json_object_get(json_object_get(json_object_get(doc, "paths"), rt->path), m);
}

Test(openapi, document_is_openapi_3_1)
{
    json_t *doc = load_doc();
    const char *v = json_string_value(json_object_get(doc, "openapi"));

    cr_assert_not_null(v);
    cr_assert_eq(strncmp(v, "3.1.", 4), 0, "openapi: %s", v);
    cr_assert_not_null(json_object_get(json_object_get(json_object_get(doc, "components"),
                                                       "securitySchemes"), "bearerAuth"));
    cr_assert_not_null(json_object_get(json_object_get(json_object_get(doc, "components"),
                                                       "schemas"), "Problem"));
    json_decref(doc);
}

Test(openapi, routes_in_document_and_code_agree)
{
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    const char *path;
    json_t *item;
    int missing = 0;

    cr_assert(json_is_object(paths));
    /* Document -> code. */
    json_object_foreach(paths, path, item) {
        for (const char *const *m = http_methods; *m; m++) {
            if (json_object_get(item, *m) && !code_route(*m, path)) {
                cr_log_error("documented but not served: %s %s", *m, path);
                missing++;
            }
        }
    }
    /* Code -> document. */
    for (size_t i = 0; i < api__n_routes; i++) {
        if (!doc_operation(doc, &api__routes[i])) {
            cr_log_error("served but not documented: %s %s", api__routes[i].method,
                         api__routes[i].path);
            missing++;
        }
    }
    cr_assert_eq(missing, 0, "%d route(s) differ between docs/openapi.json and the code",
                 missing);
    json_decref(doc);
}

Test(openapi, public_routes_are_exactly_the_unsecured_ones)
{
    json_t *doc = load_doc();

    cr_assert(json_array_size(json_object_get(doc, "security")) > 0,
              "the document needs a global bearerAuth security requirement");
    for (size_t i = 0; i < api__n_routes; i++) {
        json_t *sec = json_object_get(doc_operation(doc, &api__routes[i]), "security");
        bool doc_public = json_is_array(sec) && json_array_size(sec) == 0;
        bool code_public = api__routes[i].flags & API_ROUTE_PUBLIC;

        cr_assert_eq(doc_public, code_public, "%s %s: security differs",
                     api__routes[i].method, api__routes[i].path);
    }
    json_decref(doc);
}

/* ---------------------------------------------------------------- */

static const char *type_name(enum api_ptype t)
{
    switch (t) {
    case API_T_BOOL:
        return "boolean";
    case API_T_INT:
        return "integer";
    case API_T_NUMBER:
        return "number";
    case API_T_STRING:
        return "string";
    case API_T_INT_ARRAY:
        return "array";
    }
    return "?";
}

static void assert_int_member(json_t *o, const char *key, int64_t want, const char *ctx)
{
    json_t *v = json_object_get(o, key);

    cr_assert(json_is_number(v), "%s: %s missing", ctx, key);
    cr_assert_eq((int64_t)json_number_value(v), want, "%s: %s is %g, code says %lld", ctx, key,
                 json_number_value(v), (long long)want);
}

static void check_param(const struct api_param *p, json_t *prop, const char *sname)
{
    char ctx[128];
    json_t *en;

    snprintf(ctx, sizeof(ctx), "%s.%s", sname, p->name);
    cr_assert_not_null(prop, "%s: not in the document", ctx);
    cr_assert_str_eq(json_string_value(json_object_get(prop, "type")), type_name(p->type),
                     "%s: type", ctx);
    en = json_object_get(prop, "enum");
    switch (p->type) {
    case API_T_INT:
        if (p->n_one_of) {
            cr_assert_eq(json_array_size(en), p->n_one_of, "%s: enum size", ctx);
            for (size_t i = 0; i < p->n_one_of; i++)
                cr_assert_eq(json_integer_value(json_array_get(en, i)), p->one_of[i],
                             "%s: enum[%zu]", ctx, i);
        } else {
            assert_int_member(prop, "minimum", p->min, ctx);
            assert_int_member(prop, "maximum", p->max, ctx);
        }
        break;
    case API_T_NUMBER:
        cr_assert_float_eq(json_number_value(json_object_get(prop, "minimum")), p->fmin, 1e-9,
                           "%s: minimum", ctx);
        cr_assert_float_eq(json_number_value(json_object_get(prop, "maximum")), p->fmax, 1e-9,
                           "%s: maximum", ctx);
        break;
    case API_T_STRING:
        if (p->choices) {
            size_t n = 0;

            for (; p->choices[n]; n++)
                cr_assert_str_eq(json_string_value(json_array_get(en, n)), p->choices[n],
                                 "%s: enum[%zu]", ctx, n);
            cr_assert_eq(json_array_size(en), n, "%s: enum size", ctx);
        } else {
            assert_int_member(prop, "minLength", p->min, ctx);
            assert_int_member(prop, "maxLength", p->max, ctx);
        }
        break;
    case API_T_INT_ARRAY:
        assert_int_member(prop, "maxItems", (int64_t)p->max_items, ctx);
        assert_int_member(json_object_get(prop, "items"), "minimum", p->min, ctx);
        assert_int_member(json_object_get(prop, "items"), "maximum", p->max, ctx);
        break;
    case API_T_BOOL:
        break;
    }
    if (p->def) {
        json_t *def = json_loads(p->def, JSON_DECODE_ANY, NULL);

        cr_assert(json_equal(def, json_object_get(prop, "default")),
                  "%s: default differs (code %s)", ctx, p->def);
        json_decref(def);
    } else {
        cr_assert_null(json_object_get(prop, "default"), "%s: the code has no default", ctx);
    }
}

static void check_schema(json_t *doc, const struct api_route *rt)
{
    const struct api_schema *sch = rt->schema;
    json_t *op = doc_operation(doc, rt);
    json_t *body = json_object_get(json_object_get(json_object_get(op, "requestBody"),
                                                   "content"), "application/json");
    const char *ref = json_string_value(json_object_get(json_object_get(body, "schema"), "$ref"));
    char want[128];
    json_t *s, *props, *req;
    size_t n_required = 0;

    snprintf(want, sizeof(want), "#/components/schemas/%s", sch->name);
    cr_assert_not_null(ref, "%s %s: request body must $ref a schema", rt->method, rt->path);
    cr_assert_str_eq(ref, want, "%s %s", rt->method, rt->path);
    s = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                        sch->name);
    props = json_object_get(s, "properties");
    req = json_object_get(s, "required");
    cr_assert(json_is_false(json_object_get(s, "additionalProperties")),
              "%s: unknown fields are refused, say additionalProperties: false", sch->name);
    cr_assert_eq(json_integer_value(json_object_get(s, "minProperties")) == 1, sch->at_least_one,
                 "%s: minProperties: 1 iff at least one field is required", sch->name);
    cr_assert_eq(json_object_size(props), sch->n_params, "%s: number of properties", sch->name);
    for (size_t i = 0; i < sch->n_params; i++) {
        const struct api_param *p = &sch->params[i];
        bool doc_req = false;
        size_t k;
        json_t *v;

        check_param(p, json_object_get(props, p->name), sch->name);
        json_array_foreach(req, k, v) {
            if (strcmp(json_string_value(v), p->name) == 0)
                doc_req = true;
        }
        cr_assert_eq(doc_req, (p->flags & API_PF_REQUIRED) != 0, "%s.%s: required differs",
                     sch->name, p->name);
        n_required += doc_req;
    }
    cr_assert_eq(json_array_size(req), n_required, "%s: required names unknown fields",
                 sch->name);
}

Test(openapi, request_schemas_match_validator_tables)
{
    json_t *doc = load_doc();
    int n = 0;

    for (size_t i = 0; i < api__n_routes; i++) {
        if (!api__routes[i].schema)
            continue;
        check_schema(doc, &api__routes[i]);
        n++;
    }
    cr_assert_eq(n, 4);
    json_decref(doc);
}

/* ---------------------------------------------------------------- */

struct live {
    struct fake_backend fb;
    struct api_backend be;
    struct api_server *srv;
};

static void live_start(struct live *l)
{
    struct api_config c = { .bind_addr = "127.0.0.1", .token = TOKEN };

    fake_backend_init(&l->fb);
    fake_backend_seed(&l->fb, "r1");
    /* Event streams end at once, so GET .../events returns. */
    l->fb.destroy_on_subscribe = true;
    l->be = fake_backend_api(&l->fb);
    cr_assert_eq(api_server_start(&c, &l->be, &l->srv), 0);
}

static void live_stop(struct live *l)
{
    api_server_stop(l->srv);
    fake_backend_fini(&l->fb);
}

/* @tpl with {room} -> r1 and {id} -> 1. */
static void instantiate(const char *tpl, char *out, size_t size)
{
    size_t o = 0;

    for (const char *p = tpl; *p && o + 3 < size;) {
        if (strncmp(p, "{room}", 6) == 0) {
            o += (size_t)snprintf(out + o, size - o, "r1");
            p += 6;
        } else if (strncmp(p, "{id}", 4) == 0) {
            o += (size_t)snprintf(out + o, size - o, "1");
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

Test(openapi, every_documented_route_answers, .timeout = 60)
{
    json_t *doc = load_doc();
    const char *path;
    json_t *item;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        for (const char *const *m = http_methods; *m; m++) {
            char method[16], url[256], concrete[192];
            struct http_resp r;
            struct live l;
            bool body;

            if (!json_object_get(item, *m))
                continue;
            for (size_t i = 0; i < sizeof(method); i++) {
                method[i] = (char)toupper((unsigned char)(*m)[i]);
                if (!method[i])
                    break;
            }
            body = strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0;
            instantiate(path, concrete, sizeof(concrete));
            /* A fresh server each time, so a DELETE cannot hide a later route. */
            live_start(&l);
            snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", api_server_port(l.srv),
                     concrete);
            {
                struct http_req q = { .method = method, .url = url, .token = TOKEN,
                                      .content_type = body ? "application/json" : NULL,
                                      .body = body ? "{}" : NULL, .body_len = body ? 2 : 0 };

                cr_assert_eq(http_do(&q, &r), 0, "%s %s: curl failed", method, concrete);
            }
            cr_assert(r.status != 404 && r.status != 405 && r.status != 0,
                      "%s %s answered %ld: %s", method, concrete, r.status, r.body);
            http_resp_free(&r);
            live_stop(&l);
        }
    }
    curl_global_cleanup();
    json_decref(doc);
}

Test(openapi, server_serves_the_document)
{
    struct live l;
    struct http_resp r;
    char url[128];
    FILE *f = fopen(CHORUS_OPENAPI_PATH, "rb");
    char *file;
    long n;

    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    file = malloc((size_t)n);
    cr_assert_eq(fread(file, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    live_start(&l);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/openapi.json", api_server_port(l.srv));
    {
        struct http_req q = { .url = url, .token = TOKEN };

        cr_assert_eq(http_do(&q, &r), 0);
    }
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, (size_t)n, "served %zu bytes, file has %ld", r.body_len, n);
    cr_assert_eq(memcmp(r.body, file, (size_t)n), 0, "the compiled-in copy is stale");
    http_resp_free(&r);
    live_stop(&l);
    curl_global_cleanup();
    free(file);
}
