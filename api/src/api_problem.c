/*
 * api_problem.c: responses. RFC 9457 problem details for every error,
 * application/json for successes, and the per-status counters that
 * /metrics reports.
 *
 * Problems use "type": "about:blank" (RFC 9457 section 4.2.1): the HTTP
 * status says everything a program needs, so "title" is the status's
 * reason phrase and "detail" the sentence for this occurrence. A 422
 * adds the extension member "field" naming the offending JSON field.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { API_SANE_DETAIL_MAX = 256 };

/* Copies @src into @dst as printable ASCII. Details can carry bits of
 * client input (a parser's "near 'xyz'"), and must stay valid UTF-8 for
 * jansson and harmless in logs. */
static void sanitise(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    dst[i] = '\0';
}

static const char *reason(unsigned status)
{
    const char *r;

    /* libmicrohttpd 0.9.75 still says "Unprocessable Entity"; RFC 9110
     * renamed it. */
    if (status == MHD_HTTP_UNPROCESSABLE_CONTENT)
        return "Unprocessable Content";
    if (status == MHD_HTTP_CONTENT_TOO_LARGE)
        return "Content Too Large";
    r = MHD_get_reason_phrase_for(status);
    return (r && *r) ? r : "Error";
}

/* Creates a response holding a copy of @len bytes at @data, with the
 * given Content-Type. NULL when out of memory. */
static struct MHD_Response *response_new(const char *data, size_t len, const char *ctype)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return NULL;
    if (ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

struct MHD_Response *api__problem_new(unsigned status, const char *detail, const char *field)
{
    char clean[API_SANE_DETAIL_MAX];
    char cfield[API_FIELD_MAX];
    struct MHD_Response *resp = NULL;
    json_t *obj;
    char *text = NULL;

    sanitise(clean, sizeof(clean), (detail && *detail) ? detail : reason(status));
    obj = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", reason(status),
                    "status", (int)status, "detail", clean);
    if (!obj)
        return NULL;
    if (field && *field) {
        sanitise(cfield, sizeof(cfield), field);
        if (json_object_set_new(obj, "field", json_string(cfield)) != 0)
            goto out_free;
    }
    text = json_dumps(obj, JSON_COMPACT);
    if (!text)
        goto out_free;
    resp = response_new(text, strlen(text), "application/problem+json");

out_free:
    free(text);
    json_decref(obj);
    return resp;
}

enum MHD_Result api__send(struct api_server *s, struct api_req *r, unsigned status,
                          struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;      /* out of memory: MHD closes the connection */
    /* The body of a problem must not be cached by intermediaries. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->answered = true;
        if (status >= API_STATUS_MIN && status <= API_STATUS_MAX)
            atomic_fetch_add_explicit(&s->status_count[status - API_STATUS_MIN], 1,
                                      memory_order_relaxed);
    }
    return ret;
}

enum MHD_Result api__send_problem(struct api_server *s, struct api_req *r, unsigned status,
                                  const char *detail, const char *field)
{
    return api__send(s, r, status, api__problem_new(status, detail, field));
}

enum MHD_Result api__send_json(struct api_server *s, struct api_req *r, unsigned status,
                               const json_t *body, const char *location)
{
    struct MHD_Response *resp;
    char *text = NULL;

    if (body && status != MHD_HTTP_NO_CONTENT) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                     "the response could not be encoded", NULL);
        resp = response_new(text, strlen(text), "application/json");
        free(text);
    } else {
        resp = response_new("", 0, NULL);
    }
    if (resp && location && status == MHD_HTTP_CREATED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    return api__send(s, r, status, resp);
}

enum MHD_Result api__send_result(struct api_server *s, struct api_req *r,
                                 struct api_result *res, const char *location)
{
    enum MHD_Result ret;
    unsigned status = res->status > 0 ? (unsigned)res->status : 0;

    /* The backend's strings are fixed arrays; never trust them to be
     * terminated. */
    res->detail[sizeof(res->detail) - 1] = '\0';
    res->field[sizeof(res->field) - 1] = '\0';
    if (status >= 200 && status <= 299)
        ret = api__send_json(s, r, status, res->body, location);
    else if (status >= 400 && status <= 599)
        ret = api__send_problem(s, r, status, res->detail, res->field);
    else
        ret = api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "the backend gave no valid answer", NULL);
    json_decref(res->body);
    res->body = NULL;
    return ret;
}
