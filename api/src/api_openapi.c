/*
 * api_openapi.c: GET /v1/openapi.json, the API's own description.
 *
 * The document is docs/openapi.json, compiled into the library at build
 * time (api/embed_file.cmake), so the binary needs no file at run time;
 * api_config.openapi_path can substitute another copy, read once at start.
 */
#include "api_internal.h"

enum MHD_Result api__openapi_get(struct api_server *s, struct api_req *r)
{
    struct MHD_Response *resp;

    /* The document outlives every response: no copy needed. */
    resp = MHD_create_response_from_buffer(s->openapi_len, (void *)s->openapi,
                                           MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return api__send(s, r, MHD_HTTP_OK, resp);
}
