/*
 * mix_talk.c: energy talk detector with hysteresis. See mix_talk.h.
 */
#include "mix_talk.h"

void mix_talk_config_default(struct mix_talk_config *cfg)
{
    cfg->start_level = 45;
    cfg->stop_level = 52;
    cfg->onset_ms = 20;
    cfg->hangover_ms = 500;
}

void mix_talk_init(struct mix_talk *t)
{
    t->talking = false;
    t->above_ms = 0;
    t->below_ms = 0;
    t->smooth_db = -127.0f;
}

enum mix_talk_event mix_talk_update(struct mix_talk *t,
                                    const struct mix_talk_config *cfg,
                                    uint8_t level, uint32_t frame_ms)
{
    float db = -(float)(level > 127 ? 127 : level);
    /* Fast attack, slow decay: a talker ranks by its recent peaks, so a
     * pause between words does not drop it from the loudest set. */
    float a = db > t->smooth_db ? 0.5f : 0.05f * (float)frame_ms / 20.0f;

    t->smooth_db += a * (db - t->smooth_db);

    if (level <= cfg->start_level) {
        t->above_ms += frame_ms;
        t->below_ms = 0;
    } else if (level > cfg->stop_level) {
        t->below_ms += frame_ms;
        t->above_ms = 0;
    } else {
        /* Between the thresholds nothing changes state: that is the
         * hysteresis band. */
        t->above_ms = 0;
        t->below_ms = 0;
    }

    if (!t->talking && t->above_ms >= cfg->onset_ms) {
        t->talking = true;
        return MIX_TALK_STARTED;
    }
    if (t->talking && t->below_ms >= cfg->hangover_ms) {
        t->talking = false;
        return MIX_TALK_STOPPED;
    }
    return MIX_TALK_NONE;
}
