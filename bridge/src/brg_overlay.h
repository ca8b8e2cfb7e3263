/*
 * brg_overlay.h: the bridge in the peer-to-peer overlay.
 *
 * At start-up the bridge runs one overlay node (overlay/uv/ovl_uvnode.h)
 * on its loop, with its own Ed25519 identity (<state_dir>/identity.key,
 * the one its secure legs use) and the host cache
 * <state_dir>/hostcache.bin. It publishes a room record for every room it
 * hosts (the media address: advertise IP and media port, UDP and TCP), so
 * that clients find the room through any supernode; a deleted room's
 * record is withdrawn. The node itself keeps the records fresh and
 * republishes them after every re-login.
 *
 * Roles (brg_config.h): role auto with an empty bootstrap list makes the
 * bridge the seed of its own overlay, a supernode from the start; with a
 * bootstrap list it starts as a peer and the node promotes itself once it
 * is reachable. A bridge always listens on TCP too, since it may serve.
 *
 * Thread: loop, except brg_overlay_json (pure).
 */
#ifndef BRG_OVERLAY_H
#define BRG_OVERLAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ovl_uvnode.h"

struct brg;
struct api_result;

/* Starts the node on b->loop with identity @id (it must outlive the
 * node) when b->cfg->overlay is set, then publishes every room in
 * b->rooms. Returns 0 (also when the overlay is disabled) or a negative
 * errno after logging why (a port in use, an unusable bootstrap list). */
int brg_overlay_start(struct brg *b, const struct ovl_identity *id);

/* A room was created: publish its record. No-op when the overlay is off. */
void brg_overlay_room_added(struct brg *b, const char *room);

/* A room was deleted: withdraw its record. No-op when the overlay is off. */
void brg_overlay_room_removed(struct brg *b, const char *room);

/* Closes the node: @graceful logs out first (at most 2 s), otherwise every
 * handle closes at once. The loop keeps running until the node's handles
 * are closed. A second call is ignored. */
void brg_overlay_stop(struct brg *b, bool graceful);

/* Frees what brg_overlay_start allocated, after the loop has run the close
 * to its end. Safe when the overlay never started. */
void brg_overlay_free(struct brg *b);

/* GET /v1/overlay: 200 with brg_overlay_json, or 503 when the overlay is
 * disabled or shutting down. */
void brg_overlay_api(struct brg *b, struct api_result *res);

/* Copies the node's status into @st and the number of rooms published into
 * *@rooms (for /metrics). Returns false when no node runs. */
bool brg_overlay_status(struct brg *b, struct ovl_uvnode_status *st,
                        uint32_t *rooms);

/* What GET /v1/overlay shows, gathered on the loop. */
struct brg_overlay_view {
    const uint8_t *public_key;       /* OVL_ED_PK_LEN bytes */
    const char *mode;                /* configured role: auto|supernode|peer */
    bool seed;                       /* auto without bootstrap */
    uint32_t rooms_published;        /* rooms the node keeps published */
    int64_t nat_completed_unix;      /* Unix seconds of the last NAT result,
                                        or 0 */
    const struct ovl_uvnode_status *st;
};

/* The JSON object of GET /v1/overlay (docs/openapi.json, schema Overlay).
 * Returns a new reference, or NULL when out of memory. */
json_t *brg_overlay_json(const struct brg_overlay_view *v);

#endif /* BRG_OVERLAY_H */
