/*
 * test_rt_alloc.c: proves the real-time rule. The mixing worker must never
 * allocate, free or take a lock (STYLE.md, "The RT mixer thread").
 *
 * This binary interposes the allocator (malloc, calloc, realloc, free,
 * posix_memalign, aligned_alloc, memalign) and pthread_mutex_lock /
 * pthread_rwlock_{rd,wr}lock. Every call made while mix_rt_active() is true
 * on the calling thread counts as a violation. The engine sets that flag for
 * the whole life of a worker thread and around every manual cycle, so a
 * busy conference with legs coming and going must end with zero violations.
 *
 * Sanitizer builds (CHORUS_SANITIZED) cannot interpose the allocator, since
 * ASan and TSan own it; there the sanitizers' malloc/free hooks count
 * allocations instead, and locks are not checked.
 *
 * Positive controls show that each hook really fires, so the test can fail.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio.h"
#include "mix_engine.h"
#include "mix_ops.h"
#include "mix_rt.h"

static atomic_ulong alloc_violations;   /* allocator calls under rt */
static atomic_ulong lock_violations;    /* lock calls under rt */

static inline void note_alloc(void)
{
    if (mix_rt_active())
        atomic_fetch_add_explicit(&alloc_violations, 1, memory_order_relaxed);
}

static inline void note_lock(void)
{
    if (mix_rt_active())
        atomic_fetch_add_explicit(&lock_violations, 1, memory_order_relaxed);
}

#ifndef CHORUS_SANITIZED

/* ---- interposition (plain builds) ----
 *
 * The executable's definitions win over libc's for every caller in the
 * process (libopus, speexdsp, glibc itself), and forward to glibc's
 * allocator under its exported __libc_* names, so no dlsym is needed on the
 * allocation path. */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

void *malloc(size_t n)
{
    note_alloc();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    note_alloc();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    note_alloc();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    note_alloc();
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;

    note_alloc();
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    note_alloc();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    note_alloc();
    return __libc_memalign(align, n);
}

typedef int (*mutex_fn)(pthread_mutex_t *);
typedef int (*rwlock_fn)(pthread_rwlock_t *);
static mutex_fn real_mutex_lock;
static rwlock_fn real_rdlock, real_wrlock;

/* Resolved before main: the first lock may be taken by any thread at any
 * time, and looking a symbol up lazily from inside a lock call would race. */
__attribute__((constructor)) static void resolve_locks(void)
{
    real_mutex_lock = (mutex_fn)dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_rdlock = (rwlock_fn)dlsym(RTLD_NEXT, "pthread_rwlock_rdlock");
    real_wrlock = (rwlock_fn)dlsym(RTLD_NEXT, "pthread_rwlock_wrlock");
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    note_lock();
    if (!real_mutex_lock)
        resolve_locks();
    return real_mutex_lock(m);
}

int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    note_lock();
    if (!real_rdlock)
        resolve_locks();
    return real_rdlock(l);
}

int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    note_lock();
    if (!real_wrlock)
        resolve_locks();
    return real_wrlock(l);
}

static void hooks_install(void)
{
}

static const bool locks_checked = true;

#else /* CHORUS_SANITIZED */

/* ---- sanitizer hooks ---- */

#if defined(__has_include)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#define HAVE_ALLOCATOR_INTERFACE 1
#endif
#endif
#ifndef HAVE_ALLOCATOR_INTERFACE
/* GCC ships the runtime (libasan, libtsan export it) but not the header. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *ptr, size_t size),
    void (*free_hook)(const volatile void *ptr));
#endif

static void on_malloc(const volatile void *p, size_t n)
{
    note_alloc();
}

static void on_free(const volatile void *p)
{
    note_alloc();
}

/* Installed once per process (the runtime keeps only a few hook slots). */
static void hooks_install(void)
{
    static bool done;

    if (!done) {
        cr_assert_neq(__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free),
                      0, "sanitizer refused the malloc hooks");
        done = true;
    }
}

static const bool locks_checked = false;

#endif /* CHORUS_SANITIZED */

/* Keeps the compiler from removing an allocation whose result is unused. */
static void *volatile sink;

/* ---- positive and negative controls ---- */

Test(rt_alloc, hooks_catch_allocation_under_the_rt_flag)
{
    unsigned long before;
    void *p = NULL;

    hooks_install();
    before = atomic_load(&alloc_violations);
    sink = malloc(64);
    free(sink);
    cr_expect_eq(atomic_load(&alloc_violations), before,
                 "allocation outside rt counted");

    mix_rt_enter();
    sink = malloc(100);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 1, "malloc not caught");

    before = atomic_load(&alloc_violations);
    mix_rt_enter();
    free(sink);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 1, "free not caught");

    before = atomic_load(&alloc_violations);
    mix_rt_enter();
    sink = calloc(3, 40);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 1, "calloc not caught");

    before = atomic_load(&alloc_violations);
    mix_rt_enter();
    sink = realloc(sink, 4000);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 1, "realloc not caught");
    free(sink);

    before = atomic_load(&alloc_violations);
    mix_rt_enter();
    cr_expect_eq(posix_memalign(&p, 64, 256), 0);
    sink = aligned_alloc(64, 128);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 2,
                  "aligned allocation not caught");
    free(p);
    free(sink);

    /* The flag nests, as the engine's worker and manual cycles use it. */
    before = atomic_load(&alloc_violations);
    mix_rt_enter();
    mix_rt_enter();
    mix_rt_leave();
    sink = malloc(8);
    mix_rt_leave();
    cr_expect_geq(atomic_load(&alloc_violations), before + 1, "nested rt not seen");
    free(sink);
}

static void *rt_thread_allocates(void *arg)
{
    mix_rt_enter();
    sink = malloc(32);
    mix_rt_leave();
    free(sink);
    return NULL;
}

Test(rt_alloc, hooks_catch_allocation_on_another_thread)
{
    pthread_t t;
    unsigned long before;

    hooks_install();
    before = atomic_load(&alloc_violations);
    cr_assert_eq(pthread_create(&t, NULL, rt_thread_allocates, NULL), 0);
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&alloc_violations), before + 1);
}

Test(rt_alloc, hooks_catch_locks_under_the_rt_flag)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    unsigned long before;

    if (!locks_checked)
        cr_skip_test("locks are not interposed under sanitizers");
    before = atomic_load(&lock_violations);
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    cr_expect_eq(atomic_load(&lock_violations), before, "lock outside rt counted");
    mix_rt_enter();
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    pthread_rwlock_rdlock(&rw);
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_wrlock(&rw);
    pthread_rwlock_unlock(&rw);
    mix_rt_leave();
    cr_expect_eq(atomic_load(&lock_violations), before + 3);
}

/* ---- a busy room with churn ---- */

enum {
    TALKERS = 3,
    EXTRA = 8,              /* legs added and removed on the way */
    CHURN_EVERY = 20,       /* cycles between control changes (200 ms) */
    RUN_CYCLES = 300,       /* 3 s */
    STEP_NS = MIX_CYCLE_MS * 1000000,
};

struct talker {
    struct mix_leg *leg;
    struct ta_tx *tx;
    struct ta_sine sine;
};

struct scenario {
    struct mix_engine *e;
    struct mix_room *room;
    struct talker t[TALKERS];
    struct mix_leg *extra[EXTRA];   /* a FIFO of added legs */
    unsigned head, count;
    uint32_t next_id;
    uint64_t now_ns;                /* arrival stamps */
    bool manual;
    /* tallies */
    unsigned long outputs, created, destroyed, released, talking, actions;
};

static void on_event(const struct mix_event *ev, void *data)
{
    struct scenario *s = data;

    if (ev->type == MIX_EV_LEG_RELEASED)
        s->released++;
    if (ev->type == MIX_EV_TALKING)
        s->talking++;
}

static struct mix_leg *leg_add(struct scenario *s, enum mix_codec codec,
                               uint32_t rate)
{
    struct mix_leg_config c;
    struct mix_leg *l;

    mix_leg_config_default(&c);
    c.id = s->next_id++;
    c.codec = codec;
    c.rate = rate;
    cr_assert_eq(mix_leg_new(s->room, &c, &l), 0);
    s->created++;
    return l;
}

static void talker_start(struct scenario *s, unsigned i)
{
    struct talker *t = &s->t[i];

    t->leg = leg_add(s, MIX_CODEC_OPUS, 48000);
    if (!t->tx)
        cr_assert_eq(ta_tx_new(&t->tx, 48000, 20, 0, (uint16_t)(i * 1000), 0), 0);
    ta_sine_init(&t->sine, 440.0 + 220.0 * i, 48000, -12.0);
}

static void leg_gone(struct scenario *s, struct mix_leg *l)
{
    cr_assert_eq(mix_leg_destroy(l), 0);
    s->destroyed++;
}

static void extra_push(struct scenario *s, struct mix_leg *l)
{
    if (s->count == EXTRA) {
        leg_gone(s, s->extra[s->head]);
        s->head = (s->head + 1) % EXTRA;
        s->count--;
    }
    s->extra[(s->head + s->count) % EXTRA] = l;
    s->count++;
}

static void extra_pop(struct scenario *s)
{
    if (s->count == 0)
        return;
    leg_gone(s, s->extra[s->head]);
    s->head = (s->head + 1) % EXTRA;
    s->count--;
}

static struct mix_leg *extra_newest(struct scenario *s)
{
    return s->count ? s->extra[(s->head + s->count - 1) % EXTRA] : NULL;
}

/* One control change; @n walks through every kind of change there is. */
static void churn(struct scenario *s, unsigned n)
{
    struct mix_room_settings rs = *mix_room_settings(s->room);
    struct mix_leg *x = extra_newest(s);

    switch (n % 14) {
    case 0:
        extra_push(s, leg_add(s, MIX_CODEC_OPUS, 48000));
        break;
    case 1:
        cr_expect_eq(mix_leg_set_muted(s->t[0].leg, true), 0);
        break;
    case 2:
        cr_expect_eq(mix_leg_set_gain(s->t[1].leg, -6.0f), 0);
        extra_push(s, leg_add(s, MIX_CODEC_PCMU, 8000));
        break;
    case 3:
        if (x)
            cr_expect_eq(mix_leg_exclude(x, s->t[2].leg, true), 0);
        cr_expect_eq(mix_leg_exclude(s->t[0].leg, s->t[1].leg, true), 0);
        break;
    case 4:
        cr_expect_eq(mix_leg_set_muted(s->t[0].leg, false), 0);
        extra_push(s, leg_add(s, MIX_CODEC_OPUS, 16000));
        break;
    case 5:
        if (x)
            cr_expect_eq(mix_leg_set_deaf(x, true), 0);
        cr_expect_eq(mix_leg_set_suspended(s->t[1].leg, true), 0);
        break;
    case 6:
        extra_pop(s);
        cr_expect_eq(mix_leg_exclude(s->t[0].leg, s->t[1].leg, false), 0);
        break;
    case 7:
        rs.talkers = 2;
        rs.silence_suppression = true;
        cr_expect_eq(mix_room_update(s->room, &rs), 0);
        break;
    case 8:
        cr_expect_eq(mix_leg_set_suspended(s->t[1].leg, false), 0);
        cr_expect_eq(mix_leg_set_gain(s->t[1].leg, 0.0f), 0);
        break;
    case 9:
        /* A talker leaves while talking and comes back as a new leg. */
        leg_gone(s, s->t[2].leg);
        talker_start(s, 2);
        break;
    case 10:
        rs.talkers = 5;
        rs.silence_suppression = false;
        rs.comfort_noise = true;
        cr_expect_eq(mix_room_update(s->room, &rs), 0);
        extra_push(s, leg_add(s, MIX_CODEC_PCMA, 8000));
        break;
    case 11:
        extra_pop(s);
        extra_pop(s);
        break;
    case 12:
        extra_push(s, leg_add(s, MIX_CODEC_OPUS, 24000));
        if (x)
            cr_expect_eq(mix_leg_set_gain(x, 3.0f), 0);
        break;
    default:
        rs.talkers = 3;
        rs.comfort_noise = false;
        cr_expect_eq(mix_room_update(s->room, &rs), 0);
        break;
    }
    s->actions++;
}

static void push_talkers(struct scenario *s)
{
    int16_t pcm[960];
    uint8_t pkt[TA_MAX_PACKET];

    for (unsigned i = 0; i < TALKERS; i++) {
        struct mix_in_meta m = {.arrival_ns = s->now_ns, .level = 0xff};
        int len;

        ta_sine_fill(&s->t[i].sine, pcm, 960);
        len = ta_tx_encode(s->t[i].tx, pcm, pkt, sizeof(pkt), &m.seq, &m.ts);
        cr_assert_gt(len, 0);
        /* A full ring is allowed (counted) if the worker is late. */
        mix_leg_push(s->t[i].leg, &m, pkt, (uint32_t)len);
    }
}

static void pop_leg(struct scenario *s, struct mix_leg *l)
{
    struct mix_out_meta m;
    uint8_t buf[MIX_MAX_PACKET];
    int n;

    while ((n = mix_leg_pop(l, &m, buf, sizeof(buf))) != -EAGAIN) {
        cr_assert_geq(n, 0);
        s->outputs++;
    }
}

static void pop_all(struct scenario *s)
{
    for (unsigned i = 0; i < TALKERS; i++)
        pop_leg(s, s->t[i].leg);
    for (unsigned k = 0; k < s->count; k++)
        pop_leg(s, s->extra[(s->head + k) % EXTRA]);
}

static void sleep_until(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void run_scenario(struct scenario *s)
{
    struct mix_engine_config ec = {.workers = 1};
    uint64_t next;

    hooks_install();
    memset(s->t, 0, sizeof(s->t));
    s->next_id = 1;
    cr_assert_eq(mix_engine_new(&ec, &s->e), 0);
    cr_assert_eq(mix_room_new(s->e, 1, NULL, NULL, &s->room), 0);
    for (unsigned i = 0; i < TALKERS; i++)
        talker_start(s, i);
    if (!s->manual)
        cr_assert_eq(mix_engine_start(s->e), 0);

    s->now_ns = s->manual ? 1000000000ull : mix_rt_now_ns();
    next = s->now_ns;
    for (unsigned c = 0; c < RUN_CYCLES; c++) {
        if (c % 2 == 0)
            push_talkers(s);
        if (s->manual)
            cr_assert_eq(mix_engine_run_cycle(s->e, 0), 0);
        pop_all(s);
        if (c % CHURN_EVERY == CHURN_EVERY - 1)
            churn(s, c / CHURN_EVERY);
        mix_engine_poll(s->e, on_event, s);
        next += STEP_NS;
        if (s->manual) {
            s->now_ns = next;
        } else {
            sleep_until(next);
            s->now_ns = mix_rt_now_ns();
        }
    }
    if (!s->manual)
        mix_engine_stop(s->e);
    /* A last cycle applies what is still queued (manual mode) and a last
     * poll collects the releases. */
    if (s->manual)
        cr_assert_eq(mix_engine_run_cycle(s->e, 0), 0);
    mix_engine_poll(s->e, on_event, s);
}

static void scenario_free(struct scenario *s)
{
    mix_engine_free(s->e);
    for (unsigned i = 0; i < TALKERS; i++)
        ta_tx_free(s->t[i].tx);
}

static void check_scenario(struct scenario *s)
{
    struct mix_engine_stats st;

    mix_engine_stats(s->e, &st);
    cr_expect_eq(atomic_load(&alloc_violations), 0ul,
                 "%lu allocator calls on the real-time path",
                 atomic_load(&alloc_violations));
    cr_expect_eq(atomic_load(&lock_violations), 0ul,
                 "%lu lock calls on the real-time path",
                 atomic_load(&lock_violations));
    cr_expect_geq(st.cycles, 250u, "only %lu cycles ran", (unsigned long)st.cycles);
    cr_expect_gt(st.encodes, 100u);
    cr_expect_gt(s->outputs, 500ul, "only %lu packets out", s->outputs);
    cr_expect_geq(s->actions, 14ul);
    cr_expect_gt(s->talking, 0ul, "nobody was ever heard talking");
    cr_expect_eq(s->released, s->destroyed, "%lu legs destroyed, %lu released",
                 s->destroyed, s->released);
}

Test(rt_alloc, worker_thread_never_allocates_or_locks, .timeout = 60)
{
    struct scenario s = {.manual = false};

    run_scenario(&s);
    check_scenario(&s);
    scenario_free(&s);
}

Test(rt_alloc, manual_cycles_never_allocate_or_lock, .timeout = 60)
{
    struct scenario s = {.manual = true};

    run_scenario(&s);
    check_scenario(&s);
    scenario_free(&s);
}
