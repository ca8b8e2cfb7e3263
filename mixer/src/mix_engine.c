/*
 * mix_engine.c: engine lifecycle, the worker threads and their pacing, the
 * command and event rings, and counters. The cycle itself is in mix_cycle.c,
 * loop-side construction in mix_control.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix_internal.h"
#include "mix_rt.h"

static const uint64_t CYCLE_NS = MIX_CYCLE_MS * 1000000ull;
/* A worker that falls this many cycles behind skips ahead instead of
 * running a burst of catch-up cycles. */
static const uint64_t RESYNC_CYCLES = 5;

/* Thread: loop. Moves waiting commands into the ring while they fit. */
void mix__flush_pending(struct mix_worker *w)
{
    while (w->pend_head) {
        struct mix_cmd_node *n = w->pend_head;

        if (mix_ring_push(&w->cmd, n + 1, sizeof(struct mix_cmd)) != 0)
            return;
        w->pend_head = n->next;
        if (!w->pend_head)
            w->pend_tail = NULL;
        free(n);
    }
}

/* Thread: loop. Hands @cmd to the worker. A full ring (a burst of
 * hundreds of changes at once, e.g. a mass departure) does not refuse it:
 * it waits on the loop side and goes in with the next post, poll or
 * manual cycle, in order. Returns 0, or -ENOMEM. */
int mix__post(struct mix_worker *w, const struct mix_cmd *cmd)
{
    struct mix_cmd_node *n;

    mix__flush_pending(w);
    if (!w->pend_head && mix_ring_push(&w->cmd, cmd, sizeof(*cmd)) == 0)
        return 0;
    n = malloc(sizeof(*n) + sizeof(*cmd));
    if (!n)
        return -ENOMEM;
    n->next = NULL;
    memcpy(n + 1, cmd, sizeof(*cmd));
    if (w->pend_tail)
        w->pend_tail->next = n;
    else
        w->pend_head = n;
    w->pend_tail = n;
    cnt_add(&w->e->cmd_full, 1);
    return 0;
}

bool mix__emit(struct mix_worker *w, const struct mix_rec *rec)
{
    if (mix_ring_push(&w->ev, rec, sizeof(*rec)) != 0) {
        cnt_add(&w->ev_full, 1);
        return false;
    }
    w->produced = true;
    return true;
}

void mix__emit_event(struct mix_worker *w, enum mix_event_type type,
                     const struct mix_room *r, const struct mix_leg *l,
                     int64_t value)
{
    struct mix_rec rec = {
        .kind = MIX_REC_EVENT,
        .ev = {
            .type = type,
            .room_id = r ? r->id : 0,
            .room_user = r ? r->user : NULL,
            .leg_id = l ? l->id : 0,
            .leg_user = l ? l->user : NULL,
            .value = value,
            .worker = w->idx,
        },
    };

    /* Talk events are informational: when the ring is full they are
     * dropped and counted, never waited for. */
    mix__emit(w, &rec);
}

static void worker_free(struct mix_worker *w)
{
    if (!w)
        return;
    free(w->cmd_buf);
    free(w->ev_buf);
    free(w);
}

static struct mix_worker *worker_new(struct mix_engine *e, unsigned idx)
{
    struct mix_worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->e = e;
    w->idx = idx;
    w->cmd_buf = malloc(MIX_CMD_RING);
    w->ev_buf = malloc(MIX_EV_RING);
    if (!w->cmd_buf || !w->ev_buf)
        goto err;
    mix_ring_init(&w->cmd, w->cmd_buf, MIX_CMD_RING);
    mix_ring_init(&w->ev, w->ev_buf, MIX_EV_RING);
    w->free_legs_tail = &w->free_legs;
    w->free_groups_tail = &w->free_groups;
    w->free_rooms_tail = &w->free_rooms;
    return w;
err:
    worker_free(w);
    return NULL;
}

int mix_engine_new(const struct mix_engine_config *cfg, struct mix_engine **out)
{
    struct mix_engine *e;

    *out = NULL;
    if (cfg && cfg->workers > MIX_MAX_WORKERS)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    if (cfg)
        e->cfg = *cfg;
    if (e->cfg.workers == 0)
        e->cfg.workers = 1;
    if (e->cfg.rt_priority == 0)
        e->cfg.rt_priority = 20;
    e->vclock_ns = 1000000000ull;
    for (unsigned i = 0; i < e->cfg.workers; i++) {
        e->w[i] = worker_new(e, i);
        if (!e->w[i]) {
            mix_engine_free(e);
            return -ENOMEM;
        }
        e->nworkers++;
    }
    *out = e;
    return 0;
}

/* Thread: rt. Applies every queued command: topology changes happen only
 * here, between room cycles, never in the middle of one. */
static void drain_commands(struct mix_worker *w)
{
    struct mix_cmd cmd;

    while (mix_ring_pop(&w->cmd, &cmd, sizeof(cmd)) == (int32_t)sizeof(cmd))
        mix__apply(w, &cmd);
}

static unsigned hist_bucket(uint64_t ns)
{
    uint64_t us = ns / 1000;
    unsigned msb, b;

    if (us < 8)
        return (unsigned)us;
    msb = 63u - (unsigned)__builtin_clzll(us);
    b = 8 * (msb - 2) + (unsigned)((us >> (msb - 3)) & 7);
    return b < MIX_TICK_BUCKETS ? b : MIX_TICK_BUCKETS - 1;
}

uint64_t mix_engine_hist_upper_us(unsigned b)
{
    unsigned msb = b / 8 + 2;

    if (b < 8)
        return b + 1;
    return (uint64_t)(8 + b % 8 + 1) << (msb - 3);
}

/* Thread: rt. One cycle of one worker at time w->now_ns. Returns its
 * duration in ns. */
static uint64_t run_cycle(struct mix_worker *w)
{
    uint64_t t0 = mix_rt_now_ns(), dt;
    bool busy = false;

    drain_commands(w);
    w->cycle_encodes = 0;
    for (struct mix_room *r = w->rooms; r; r = r->next) {
        if (!mix__room_due(w, r))
            continue;
        mix__room_cycle(w, r);
        busy = true;
    }
    mix__flush_releases(w);
    w->cycle++;
    dt = mix_rt_now_ns() - t0;

    cnt_add(&w->cycles, 1);
    if (busy) {
        cnt_add(&w->busy_cycles, 1);
        cnt_add(&w->hist[hist_bucket(dt)], 1);
        cnt_add(&w->busy_ns, dt);
        cnt_set(&w->last_encodes, w->cycle_encodes);
        if (dt > cnt_get(&w->max_cycle_ns))
            cnt_set(&w->max_cycle_ns, dt);
    }
    if (w->produced) {
        struct mix_engine *e = w->e;
        w->produced = false;
        /* Coalesce: only the first producer after a poll wakes the loop. */
        if (e->cfg.wake && !atomic_exchange(&e->wake_pending, true))
            e->cfg.wake(e->cfg.wake_data);
    }
    return dt;
}

static void *worker_main(void *arg)
{
    struct mix_worker *w = arg;
    uint64_t next;
    int rc = 0;
    char name[16];

    /* Named so that top, perf and /proc/<pid>/task show the mixer apart. */
    snprintf(name, sizeof(name), "chorus-mix%u", w->idx);
    pthread_setname_np(pthread_self(), name);
    mix_rt_enter();
    if (w->e->cfg.realtime)
        rc = mix_rt_promote(w->e->cfg.rt_priority);
    mix__emit_event(w, MIX_EV_RT_PRIORITY, NULL, NULL,
                    w->e->cfg.realtime && rc == 0 ? 1 : (rc ? rc : -EPERM));

    next = mix_rt_now_ns();
    while (atomic_load_explicit(&w->running, memory_order_acquire)) {
        uint64_t end;

        w->now_ns = next;
        run_cycle(w);
        end = mix_rt_now_ns();
        next += CYCLE_NS;
        if (end > next) {
            cnt_add(&w->missed, 1);
            mix__emit_event(w, MIX_EV_LATE_CYCLE, NULL, NULL,
                            (int64_t)((end - next) / 1000));
            if (end - next > RESYNC_CYCLES * CYCLE_NS)
                next = end;
        }
        mix_rt_sleep_until(next);
    }
    /* Last commands (for instance removals posted just before stop) are
     * applied so that their release events reach the loop. */
    drain_commands(w);
    mix__flush_releases(w);
    mix_rt_leave();
    return NULL;
}

int mix_engine_start(struct mix_engine *e)
{
    if (e->running)
        return -EALREADY;
    for (unsigned i = 0; i < e->nworkers; i++) {
        struct mix_worker *w = e->w[i];
        int rc;

        atomic_store(&w->running, true);
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            atomic_store(&w->running, false);
            e->running = true;
            mix_engine_stop(e);
            return -rc;
        }
        w->started = true;
    }
    e->running = true;
    return 0;
}

/* Thread: loop, with @w's thread stopped (or never started): applies every
 * command still queued, in the ring or waiting on the loop side, and queues
 * the releases, as the worker would have, so that the next poll delivers
 * them. */
static void settle(struct mix_worker *w)
{
    drain_commands(w);
    while (w->pend_head) {
        mix__flush_pending(w);
        drain_commands(w);
    }
    mix__flush_releases(w);
}

void mix_engine_stop(struct mix_engine *e)
{
    if (!e->running)
        return;
    for (unsigned i = 0; i < e->nworkers; i++) {
        struct mix_worker *w = e->w[i];
        if (!w->started)
            continue;
        atomic_store_explicit(&w->running, false, memory_order_release);
        pthread_join(w->thread, NULL);
        w->started = false;
        settle(w);
    }
    e->running = false;
}

int mix_engine_run_cycle(struct mix_engine *e, unsigned worker)
{
    struct mix_worker *w;

    if (e->running)
        return -EBUSY;
    if (worker >= e->nworkers)
        return -EINVAL;
    w = e->w[worker];
    mix__flush_pending(w);
    w->now_ns = e->vclock_ns;
    mix_rt_enter();
    run_cycle(w);
    mix_rt_leave();
    /* The virtual clock advances once all workers have had this cycle. */
    if (worker == e->nworkers - 1)
        e->vclock_ns += CYCLE_NS;
    return 0;
}

uint64_t mix_engine_now_ns(const struct mix_engine *e)
{
    return e->running ? mix_rt_now_ns() : e->vclock_ns;
}

/* Thread: loop. Unlinks a released room from the loop's list. */
static void room_forget(struct mix_engine *e, struct mix_room *r)
{
    if (r->l_prev)
        r->l_prev->l_next = r->l_next;
    else
        e->l_rooms = r->l_next;
    if (r->l_next)
        r->l_next->l_prev = r->l_prev;
}

static void leg_forget(struct mix_leg *l)
{
    struct mix_room *r = l->room;

    if (l->l_prev)
        l->l_prev->l_next = l->l_next;
    else
        r->l_legs = l->l_next;
    if (l->l_next)
        l->l_next->l_prev = l->l_prev;
}

int mix_engine_poll(struct mix_engine *e, mix_event_cb cb, void *data)
{
    struct mix_rec rec;
    int n = 0;

    /* Clear first: a cycle that produces after this point wakes us again. */
    atomic_store(&e->wake_pending, false);
    for (unsigned i = 0; i < e->nworkers; i++) {
        struct mix_worker *w = e->w[i];

        mix__flush_pending(w);
        /* Stopped or manual: nobody else hands releases back. */
        if (!e->running)
            mix__flush_releases(w);
        while (mix_ring_pop(&w->ev, &rec, sizeof(rec)) == (int32_t)sizeof(rec)) {
            if (rec.kind != MIX_REC_FREE_GROUP) {
                if (cb)
                    cb(&rec.ev, data);
                n++;
            }
            switch (rec.kind) {
            case MIX_REC_FREE_LEG:
                leg_forget(rec.obj);
                mix__leg_free(rec.obj);
                break;
            case MIX_REC_FREE_ROOM:
                room_forget(e, rec.obj);
                mix__room_free(rec.obj);
                break;
            case MIX_REC_FREE_GROUP:
                mix__group_free(rec.obj);
                break;
            case MIX_REC_EVENT:
                break;
            }
        }
    }
    return n;
}

void mix_engine_free(struct mix_engine *e)
{
    if (!e)
        return;
    mix_engine_stop(e);
    /* With the workers stopped this thread may play rt: apply what is still
     * queued and hand every release back, so that nothing in a ring leaks.
     * Each round frees event-ring space for the next; the bound only guards
     * against a bug. */
    for (unsigned i = 0; i < e->nworkers; i++)
        settle(e->w[i]);
    for (int round = 0; round < 1000; round++) {
        bool pending = false;
        for (unsigned i = 0; i < e->nworkers; i++) {
            struct mix_worker *w = e->w[i];
            mix__flush_releases(w);
            pending |= w->free_legs || w->free_groups || w->free_rooms;
        }
        mix_engine_poll(e, NULL, NULL);
        if (!pending)
            break;
    }
    while (e->l_rooms) {
        struct mix_room *r = e->l_rooms;

        while (r->l_legs) {
            struct mix_leg *l = r->l_legs;
            leg_forget(l);
            mix__leg_free(l);
        }
        for (unsigned g = 0; g < MIX_MAX_GROUPS; g++)
            if (r->l_groups[g])
                mix__group_free(r->l_groups[g]);
        room_forget(e, r);
        mix__room_free(r);
    }
    for (unsigned i = 0; i < e->nworkers; i++)
        worker_free(e->w[i]);
    free(e);
}

void mix_engine_stats(const struct mix_engine *e, struct mix_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < e->nworkers; i++) {
        const struct mix_worker *w = e->w[i];
        uint64_t mx = cnt_get(&w->max_cycle_ns);

        out->cycles += cnt_get(&w->cycles);
        out->busy_cycles += cnt_get(&w->busy_cycles);
        out->missed += cnt_get(&w->missed);
        out->encodes += cnt_get(&w->encodes);
        out->decodes += cnt_get(&w->decodes);
        out->last_encodes += cnt_get(&w->last_encodes);
        out->busy_ns += cnt_get(&w->busy_ns);
        out->rooms += cnt_get(&w->rooms_n);
        out->legs += cnt_get(&w->legs_n);
        if (mx > out->max_cycle_ns)
            out->max_cycle_ns = mx;
        for (unsigned b = 0; b < MIX_TICK_BUCKETS; b++)
            out->hist[b] += cnt_get(&w->hist[b]);
    }
    out->cmd_full = cnt_get(&e->cmd_full);
}

uint64_t mix_engine_cycle_percentile_us(const struct mix_engine_stats *s,
                                        double pct)
{
    uint64_t total = 0, acc = 0, want;

    for (unsigned b = 0; b < MIX_TICK_BUCKETS; b++)
        total += s->hist[b];
    if (total == 0)
        return 0;
    want = (uint64_t)((double)total * pct / 100.0 + 0.5);
    if (want == 0)
        want = 1;
    for (unsigned b = 0; b < MIX_TICK_BUCKETS; b++) {
        acc += s->hist[b];
        if (acc >= want)
            return mix_engine_hist_upper_us(b);
    }
    return mix_engine_hist_upper_us(MIX_TICK_BUCKETS - 1);
}
