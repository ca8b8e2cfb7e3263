/*
 * api_metrics.c: the operational endpoints.
 *
 *   GET /v1/health   liveness, no token (for probes and load balancers)
 *   GET /metrics     Prometheus text format 0.0.4: the api module's own
 *                    counters, then whatever the backend appends (legs,
 *                    rooms, packets, loss, jitter, tick histogram...)
 */
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

enum MHD_Result api__health_get(struct api_server *s, struct api_req *r)
{
    json_t *body;
    enum MHD_Result ret;

    if (atomic_load(&s->stopping))
        return api__send_problem(s, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "the server is stopping", NULL);
    body = json_pack("{s:s}", "status", "ok");
    ret = api__send_json(s, r, MHD_HTTP_OK, body, NULL);
    json_decref(body);
    return ret;
}

/* Writes the api module's metric families to @f. */
static void write_api_metrics(struct api_server *s, FILE *f)
{
    uint64_t dropped;
    unsigned streams = api__events_count(s, &dropped);

    fputs("# HELP chorus_api_requests_total HTTP responses sent by the REST API, by status code.\n"
          "# TYPE chorus_api_requests_total counter\n", f);
    for (unsigned st = API_STATUS_MIN; st <= API_STATUS_MAX; st++) {
        uint64_t n = atomic_load_explicit(&s->status_count[st - API_STATUS_MIN],
                                          memory_order_relaxed);
        /* Only statuses seen: 500 mostly-zero series would swamp the scrape. */
        if (n)
            fprintf(f, "chorus_api_requests_total{status=\"%u\"} %" PRIu64 "\n", st, n);
    }
    fprintf(f, "# HELP chorus_api_rate_limited_total Requests refused by the per-IP rate limit.\n"
               "# TYPE chorus_api_rate_limited_total counter\n"
               "chorus_api_rate_limited_total %" PRIu64 "\n",
            (uint64_t)atomic_load_explicit(&s->rate_limited, memory_order_relaxed));
    fprintf(f, "# HELP chorus_api_sse_streams Open Server-Sent Events streams.\n"
               "# TYPE chorus_api_sse_streams gauge\n"
               "chorus_api_sse_streams %u\n", streams);
    fprintf(f, "# HELP chorus_api_sse_dropped_total SSE subscribers dropped for falling behind.\n"
               "# TYPE chorus_api_sse_dropped_total counter\n"
               "chorus_api_sse_dropped_total %" PRIu64 "\n", dropped);
}

/* Appends the backend's text; reports in a gauge whether it could. */
static void write_backend_metrics(struct api_server *s, FILE *f)
{
    char *text = NULL;
    size_t len = 0;
    int rc = -ENOSYS;

    if (s->be.metrics)
        rc = s->be.metrics(s->be.ctx, &text, &len);
    fprintf(f, "# HELP chorus_api_backend_metrics_up Whether the bridge supplied its metrics.\n"
               "# TYPE chorus_api_backend_metrics_up gauge\n"
               "chorus_api_backend_metrics_up %d\n", rc == 0 ? 1 : 0);
    if (rc == 0 && text && len) {
        fwrite(text, 1, len, f);
        /* The exposition format is line-based: end the last line. */
        if (text[len - 1] != '\n')
            fputc('\n', f);
    }
    free(text);
}

enum MHD_Result api__metrics_get(struct api_server *s, struct api_req *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct MHD_Response *resp;

    if (!f)
        return api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    write_api_metrics(s, f);
    write_backend_metrics(s, f);
    if (fclose(f) != 0) {
        free(buf);
        return api__send_problem(s, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    }
    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    return api__send(s, r, MHD_HTTP_OK, resp);
}
