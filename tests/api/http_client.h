/*
 * http_client.h: a small libcurl wrapper for the api tests: one blocking
 * request, the whole answer (status, headers, body) in memory.
 */
#ifndef HTTP_CLIENT_H
#define HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct http_req {
    const char *method;          /* "GET" when NULL */
    const char *url;
    const char *token;           /* sent as "Authorization: Bearer <token>", or NULL */
    const char *auth_header;     /* a whole Authorization value instead, or NULL */
    const char *content_type;    /* or NULL */
    const char *body;            /* or NULL */
    size_t body_len;
    bool chunked;                /* send the body with Transfer-Encoding: chunked */
    bool expect_100;             /* send Expect: 100-continue */
    long timeout_ms;             /* 0: 5000 */
};

struct http_resp {
    long status;
    int curl_rc;                 /* CURLcode */
    char *headers;               /* raw header block */
    size_t headers_len;
    char *body;                  /* NUL-terminated */
    size_t body_len;
};

/* Performs @req; returns the CURLcode (0 on success). */
int http_do(const struct http_req *req, struct http_resp *out);
void http_resp_free(struct http_resp *r);

/* The value of header @name in @r (case-insensitive), copied into @buf;
 * NULL when absent. */
const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t size);

/* The body parsed as JSON (new reference), or NULL. */
json_t *http_json(const struct http_resp *r);

#endif /* HTTP_CLIENT_H */
