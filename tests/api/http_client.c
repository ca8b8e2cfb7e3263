/*
 * http_client.c: see http_client.h.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *userdata)
{
    struct buf *b = userdata;
    size_t add = size * n;
    char *nd = realloc(b->data, b->len + add + 1);

    if (!nd)
        return 0;
    memcpy(nd + b->len, ptr, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

struct upload {
    const char *data;
    size_t len, off;
};

/* Hands the body out in pieces of at most 1000 bytes, so a chunked
 * upload really has several chunks. */
static size_t on_read(char *dst, size_t size, size_t n, void *userdata)
{
    struct upload *u = userdata;
    size_t room = size * n;
    size_t take = u->len - u->off;

    if (take > room)
        take = room;
    if (take > 1000)
        take = 1000;
    memcpy(dst, u->data + u->off, take);
    u->off += take;
    return take;
}

int http_do(const struct http_req *req, struct http_resp *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct buf body = { 0 }, head = { 0 };
    struct upload up = { req->body, req->body_len, 0 };
    const char *method = req->method ? req->method : "GET";
    char line[512];
    CURLcode rc;

    memset(out, 0, sizeof(*out));
    if (!c)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* Send paths as written: curl would otherwise squash "/.." itself
     * and the server's handling of it would go untested. */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
    if (req->token) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", req->token);
        hdrs = curl_slist_append(hdrs, line);
    } else if (req->auth_header) {
        snprintf(line, sizeof(line), "Authorization: %s", req->auth_header);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (req->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
        hdrs = curl_slist_append(hdrs, line);
    } else {
        /* Otherwise curl adds application/x-www-form-urlencoded. */
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    hdrs = curl_slist_append(hdrs, req->expect_100 ? "Expect: 100-continue" : "Expect:");
    if (req->body && req->chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
    } else if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 && !req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    out->curl_rc = (int)rc;
    out->body = body.data ? body.data : strdup("");
    out->body_len = body.len;
    out->headers = head.data ? head.data : strdup("");
    out->headers_len = head.len;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return (int)rc;
}

void http_resp_free(struct http_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    const char *p = r->headers;

    /* The last match wins: after a 100 Continue there are two blocks. */
    const char *found = NULL;
    size_t found_len = 0;

    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);

        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;

            while (*v == ' ')
                v++;
            found = v;
            found_len = len - (size_t)(v - p);
        }
        p = eol ? eol + 2 : NULL;
    }
    if (!found || size == 0)
        return NULL;
    if (found_len >= size)
        found_len = size - 1;
    memcpy(buf, found, found_len);
    buf[found_len] = '\0';
    return buf;
}

json_t *http_json(const struct http_resp *r)
{
    return json_loadb(r->body, r->body_len, 0, NULL);
}
