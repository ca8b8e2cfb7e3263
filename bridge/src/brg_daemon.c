/*
 * brg_daemon.c: the bridge's life: start-up on embedded defaults (state
 * directory, API token, room store, mixing engine, media sockets, REST API,
 * demo room, overlay node), the mixer's wake-up (events, then every leg's
 * output), a housekeeping timer, and a graceful shutdown on SIGINT/SIGTERM
 * (API closed, legs told, overlay logged out, engine stopped, store
 * closed).
 *
 * Thread: loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "brg.h"
#include "brg_daemon.h"
#include "brg_log.h"
#include "brg_overlay.h"
#include "mix_rt.h"

enum { TICK_MS = 100, HOUSEKEEPING_EVERY = 10 };

uint64_t brg_now_ms(void)
{
    return mix_rt_now_ns() / 1000000u;
}

/* Thread: rt. Must stay lock-free: uv_async_send is. */
static void on_engine_wake(void *data)
{
    struct brg *b = data;

    uv_async_send(&b->mix_async);
}

static void on_mix_event(const struct mix_event *ev, void *data)
{
    struct brg *b = data;
    struct brg_leg *l = ev->leg_user;

    switch (ev->type) {
    case MIX_EV_TALKING:
    case MIX_EV_STOPPED_TALKING:
        if (l && !l->dying)
            brg_room_emit(l->room, ev->type == MIX_EV_TALKING ? "talking" : "stopped-talking",
                          json_pack("{s:I}", "id", (json_int_t)l->id));
        break;
    case MIX_EV_LEG_RELEASED:
        if (l)
            brg_leg_released(b, l);
        break;
    case MIX_EV_ROOM_RELEASED:
        brg_room_released(b, ev->room_user);
        break;
    case MIX_EV_RT_PRIORITY:
        if (ev->value == 1)
            BRG_LOGI("mix.rt", "mixing worker %u runs with real-time priority", ev->worker);
        else
            BRG_LOGI("mix.rt", "mixing worker %u runs at normal priority (real-time scheduling refused: %s)",
                     ev->worker, strerror((int)-ev->value));
        break;
    case MIX_EV_LATE_CYCLE:
        BRG_LOG_RATELIMITED("mix.rt", BRG_LOG_WARN, "mixing cycle missed its deadline by %lld us",
                            (long long)ev->value);
        break;
    }
}

static void on_mix_async(uv_async_t *h)
{
    struct brg *b = h->data;
    struct brg_leg *l, *tmp;

    mix_engine_poll(b->engine, on_mix_event, b);
    HASH_ITER(hh, b->legs, l, tmp)
        brg_leg_drain(b, l);
}

static void on_api_async(uv_async_t *h)
{
    brg_backend_drain(h->data);
}

static void on_tick(uv_timer_t *t)
{
    static unsigned n;
    struct brg *b = t->data;
    struct brg_leg *l, *tmp;
    uint64_t now = brg_now_ms();

    /* The engine coalesces wake-ups; a periodic poll is a safety net that
     * costs nothing when there is nothing to do. */
    on_mix_async(&b->mix_async);
    if (++n % HOUSEKEEPING_EVERY)
        return;
    HASH_ITER(hh, b->legs, l, tmp) {
        if (l->kind == BRG_LEG_RTP)
            brg_plain_tick(b, l, now);
    }
    brg_secure_tick(b, now);
    brg_metrics_refresh(b);
}

static void shutdown_begin(struct brg *b, const char *why)
{
    struct brg_leg *l, *tmp;

    if (b->stopping)
        return;
    BRG_LOGI("bridge", "shutting down (%s)", why);
    brg_backend_fail_all(b);
    if (b->api) {
        api_server_stop(b->api);
        b->api = NULL;
    }
    HASH_ITER(hh, b->legs, l, tmp)
        brg_leg_remove(b, l, "bridge shutting down");
    brg_secure_stop(b);
    /* Logs out (an "offline" record; at most 2 s): the loop runs until the
     * node's handles are closed. */
    brg_overlay_stop(b, true);
    uv_timer_stop(&b->tick);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    /* Stop the workers: they apply the last commands and hand every
     * released leg back, which the poll below frees. */
    mix_engine_stop(b->engine);
    mix_engine_poll(b->engine, on_mix_event, b);
    uv_close((uv_handle_t *)&b->mix_async, NULL);
    uv_close((uv_handle_t *)&b->api_async, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    shutdown_begin(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static int demo_room(struct brg *b)
{
    struct brg_room rec;
    int rc;

    if (!b->cfg->demo_room[0] || brg_room_find(b, b->cfg->demo_room))
        return 0;
    brg_room_defaults(&rec);
    snprintf(rec.name, sizeof(rec.name), "%s", b->cfg->demo_room);
    rc = brg_room_create(b, &rec, true, NULL);
    if (rc == 0)
        BRG_LOGI("bridge", "created demo room %s", rec.name);
    return rc;
}

static int open_store(struct brg *b)
{
    char path[4096], err[256];
    int rc = brg_store_path(path, sizeof(path), b->cfg->state_dir);

    if (rc)
        return rc;
    rc = brg_store_open(&b->store, path, err, sizeof(err));
    if (rc)
        BRG_LOGE("bridge", "cannot open room store %s: %s", path, err);
    return rc;
}

static int start_engine(struct brg *b)
{
    struct mix_engine_config ec = {
        .workers = (unsigned)b->cfg->workers,
        .realtime = b->cfg->realtime,
        .wake = on_engine_wake,
        .wake_data = b,
    };
    int rc = mix_engine_new(&ec, &b->engine);

    if (rc)
        return rc;
    return mix_engine_start(b->engine);
}

static int start_api(struct brg *b)
{
    struct api_backend be;
    struct api_config ac = {
        .bind_addr = b->cfg->api_addr,
        .port = (uint16_t)b->cfg->api_port,
        .token = b->token,
    };
    int rc;

    brg_backend_init(b, &be);
    rc = api_server_start(&ac, &be, &b->api);
    if (rc)
        BRG_LOGE("bridge.api", "cannot start the REST API on %s:%d: %s", b->cfg->api_addr,
                 b->cfg->api_port, strerror(-rc));
    return rc;
}

static void free_rooms(struct brg *b)
{
    struct brg_room_rt *r, *tmp;

    HASH_ITER(hh, b->rooms, r, tmp) {
        HASH_DEL(b->rooms, r);
        while (r->subs) {
            struct brg_sub *s = r->subs;
            r->subs = s->next;
            free(s);
        }
        free(r);
    }
}

int brg_run(struct brg_config *cfg)
{
    struct brg *b = calloc(1, sizeof(*b));
    uv_loop_t loop;
    int rc;

    if (!b)
        return 1;
    b->cfg = cfg;
    b->loop = &loop;
    b->exit_code = 1;
    pthread_mutex_init(&b->q_lock, NULL);
    pthread_mutex_init(&b->metrics_lock, NULL);
    uv_loop_init(&loop);

    rc = brg_config_make_state_dir(cfg->state_dir);
    if (rc) {
        BRG_LOGE("bridge", "cannot create state directory %s: %s", cfg->state_dir, strerror(-rc));
        goto out;
    }
    if (cfg->api_token[0]) {
        b->token = strdup(cfg->api_token);
    } else {
        rc = brg_config_load_or_create_token(cfg->state_dir, &b->token);
        if (rc) {
            BRG_LOGE("bridge", "cannot create the API token in %s: %s", cfg->state_dir, strerror(-rc));
            goto out;
        }
        BRG_LOGI("bridge.api", "API token is in %s/api-token (mode 0600)", cfg->state_dir);
    }
    if ((rc = open_store(b)) != 0)
        goto out;
    uv_async_init(&loop, &b->mix_async, on_mix_async);
    uv_async_init(&loop, &b->api_async, on_api_async);
    b->mix_async.data = b->api_async.data = b;
    if ((rc = start_engine(b)) != 0) {
        BRG_LOGE("bridge", "cannot start the mixing engine: %s", strerror(-rc));
        goto out_handles;
    }
    brg_rooms_load(b);
    if ((rc = demo_room(b)) != 0)
        BRG_LOGW("bridge", "demo room %s not created: %s", cfg->demo_room, strerror(-rc));
    if ((rc = brg_secure_start(b)) != 0)
        goto out_secure;
    /* After the rooms are loaded: the node publishes each of them. */
    if ((rc = brg_overlay_start(b, brg_secure_identity(b))) != 0)
        goto out_secure;
    if ((rc = start_api(b)) != 0)
        goto out_secure;

    uv_timer_init(&loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(&loop, &b->sigint);
    uv_signal_init(&loop, &b->sigterm);
    b->sigint.data = b->sigterm.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    brg_metrics_refresh(b);

    BRG_LOGI("bridge", "ready: media on udp+tcp %s:%d, REST API on http://%s:%u, state in %s, %u rooms",
             cfg->media_addr, cfg->media_port, cfg->api_addr, api_server_port(b->api),
             cfg->state_dir, HASH_COUNT(b->rooms));
    uv_run(&loop, UV_RUN_DEFAULT);
    b->exit_code = 0;
    goto out_free;

out_secure:
    brg_overlay_stop(b, false);
    brg_secure_stop(b);
    mix_engine_stop(b->engine);
out_handles:
    uv_close((uv_handle_t *)&b->mix_async, NULL);
    uv_close((uv_handle_t *)&b->api_async, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
out_free:
    brg_overlay_free(b);
    brg_secure_free(b);
    mix_engine_free(b->engine);
    free_rooms(b);
out:
    rc = b->exit_code;
    if (uv_loop_close(&loop) != 0)
        BRG_LOGW("bridge", "event loop closed with handles still open");
    brg_store_close(b->store);
    free(b->metrics_text);
    if (b->token)
        sodium_memzero(b->token, strlen(b->token));
    free(b->token);
    pthread_mutex_destroy(&b->q_lock);
    pthread_mutex_destroy(&b->metrics_lock);
    free(b);
    return rc;
}
