/* frames: small frames rendered by workers, assembled in index order into an
   animated GIF that loops forever (SPEC 3.4). A unit is a run of frames; its
   result is each frame already reduced to a palette and indices, so that the
   manager only writes. Scenes: random (SplitMix64 colours) and zoom (a dive
   into the Mandelbrot set, with the arithmetic of SPEC 3.1). */
#include "common/bytes.h"
#include "common/image.h"
#include "common/options.h"
#include "common/reorder.h"
#include "common/rng.h"
#include "jobs/job.h"
#include "jobs/mandelbrot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCENE_RANDOM 0
#define SCENE_ZOOM   1
#define MAX_COUNT    1000000u
#define MAX_SIDE     65535u              /* GIF's limit */
#define MAX_PAYLOAD  (16u << 20)         /* = HY_MAX_PAYLOAD */
#define FRAME_HEADER (2 + 768)           /* colour count and the largest palette */
#define PARAMS_LEN   (4 + 2 + 2 + 8 + 2 + 4 + 1)

typedef struct {
    uint32_t count;            /* frames */
    uint32_t width, height;    /* pixels, 1..65535 */
    uint64_t seed;
    uint32_t delay;            /* hundredths of a second */
    uint32_t per_unit;         /* frames per unit */
    uint8_t scene;             /* SCENE_* */
} frames_params_t;

static uint64_t s_units(const frames_params_t *p) { return (p->count + (uint64_t) p->per_unit - 1) / p->per_unit; }

static const char *s_check(const frames_params_t *p)
{
    if (p->count < 1 || p->count > MAX_COUNT)
        return "--count must be from 1 to 1000000";
    if (p->width < 1 || p->width > MAX_SIDE || p->height < 1 || p->height > MAX_SIDE)
        return "--width and --height must be from 1 to 65535 (the GIF limit)";
    if (p->delay > 65535)
        return "--delay must be from 0 to 65535";
    if (p->scene > SCENE_ZOOM)
        return "unknown --scene";
    uint64_t frame_max = FRAME_HEADER + (uint64_t) p->width * p->height;
    if (frame_max > MAX_PAYLOAD)
        return "a frame of --width x --height must be at most 16 MiB";
    if (p->per_unit < 1 || p->per_unit > p->count || p->per_unit * frame_max > MAX_PAYLOAD)
        return "--frames-per-unit must be from 1 to --count, and its frames at most 16 MiB";
    return NULL;
}

/* ------------------------------------------------------------ scenes */

static bool s_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* SPEC 3.4 random: pixel p of frame f from the stream of mix64(S + (f+1) GAMMA).
   Looks at *cancel before each row; returns 0 or JOB_CANCELLED. */
static int s_render_random(const frames_params_t *p, uint32_t f, uint8_t *rgb, const atomic_bool *cancel)
{
    uint64_t seed = stream_at(p->seed, (uint64_t) f + 1);
    size_t i = 0;
    for (uint32_t y = 0; y < p->height; y++) {
        if (s_cancelled(cancel))
            return JOB_CANCELLED;
        for (size_t end = i + p->width; i < end; i++) {
            uint64_t v = stream_at(seed, i + 1);
            rgb[3 * i] = (uint8_t) v;
            rgb[3 * i + 1] = (uint8_t) (v >> 8);
            rgb[3 * i + 2] = (uint8_t) (v >> 16);
        }
    }
    return 0;
}

/* The zoom's target: a point of the seahorse valley, rich in detail at every depth. */
#define ZOOM_X (-0.743643887037151)
#define ZOOM_Y 0.131825904205330
#define ZOOM_WIDTH 3.0    /* view width of frame 0 */
#define ZOOM_STEP 0.96    /* each frame's width is the last one's times this */

/* A cyclic gradient of 255 colours (escape count k shows colour 4k mod 255), night blue through gold and white to
   orange, interpolated in integers between stops. */
static void s_gradient(uint8_t gradient[255][3])
{
    static const int stops[][4] = {
        {0, 5, 10, 40}, {50, 30, 80, 180}, {110, 240, 230, 170}, {150, 255, 255, 255}, {200, 230, 120, 30}, {255, 5, 10, 40},
    };
    for (int i = 0; i < 255; i++) {
        int s = 0;
        while (stops[s + 1][0] <= i)
            s++;
        int span = stops[s + 1][0] - stops[s][0], t = i - stops[s][0];
        for (int c = 0; c < 3; c++)
            gradient[i][c] = (uint8_t) (stops[s][c + 1] + (stops[s + 1][c + 1] - stops[s][c + 1]) * t / span);
    }
}

/* The Mandelbrot view of frame f. Repeated multiplication, not pow(), so
   that every machine computes the same view. */
static mandel_params_t s_zoom_view(const frames_params_t *p, uint32_t f)
{
    double width = ZOOM_WIDTH;
    for (uint32_t i = 0; i < f; i++)
        width *= ZOOM_STEP;
    double half_w = width / 2, half_h = half_w * p->height / p->width;
    uint32_t max_iter = 256 + 8 * (f < 500 ? f : 500);
    return (mandel_params_t) {p->width, p->height, ZOOM_X - half_w, ZOOM_X + half_w, ZOOM_Y - half_h,
                              ZOOM_Y + half_h, max_iter, 1};
}

/* Column by column with the mandelbrot job's fastest kernel, which looks at
   *cancel as it goes. Returns 0, JOB_CANCELLED or JOB_FAILED (memory). */
static int s_render_zoom(const frames_params_t *p, uint32_t f, uint8_t *rgb, const atomic_bool *cancel)
{
    uint8_t gradient[255][3];
    s_gradient(gradient);
    mandel_params_t view = s_zoom_view(p, f);
    uint32_t *k = malloc(p->height * sizeof *k);
    if (!k)
        return JOB_FAILED;
    for (uint32_t i = 0; i < p->width; i++) {
        if (s_cancelled(cancel) || mandel_counts(&view, i, 0, p->height, k, cancel) == JOB_CANCELLED) {
            free(k);
            return JOB_CANCELLED;
        }
        for (uint32_t j = 0; j < p->height; j++) {
            uint8_t *px = rgb + 3 * ((size_t) j * p->width + i);
            if (k[j] == view.max_iter)
                px[0] = px[1] = px[2] = 0;   /* in the set: black */
            else
                memcpy(px, gradient[(4 * (uint64_t) k[j]) % 255], 3);   /* 4 cycles faster than 1 */
        }
    }
    free(k);
    return 0;
}

/* ------------------------------------------------------------ parameters */

static void s_encode(const frames_params_t *p, uint8_t *buf)
{
    writer_t w = {buf};
    writer_be(&w, p->count, 4);
    writer_be(&w, p->width, 2);
    writer_be(&w, p->height, 2);
    writer_be(&w, p->seed, 8);
    writer_be(&w, p->delay, 2);
    writer_be(&w, p->per_unit, 4);
    writer_be(&w, p->scene, 1);
}

/* ------------------------------------------------------------ manager side */

typedef struct {
    frames_params_t p;
    const char *frames_dir;    /* also write each frame as a PNG here, or NULL */
    gif_writer_t *gif;
    reorder_t *reorder;        /* units waiting for an earlier one */
    uint8_t *rgb;              /* one frame, for the PNG files */
    uint8_t last_palette[768]; /* the frame written last, for the preview */
    uint8_t *last_indices;     /* (NULL until one was) */
    char token[17];            /* this run's mark on the frames it has not published yet */
    uint64_t written;          /* frames written so far, under their hidden names */
    bool published;            /* the frames have their own names: the job is done */
    char error[512];           /* the first write error */
} state_t;

/* Frame f's file in --frames-dir: its own name, or (hidden) the one it has
   until the job is done, so that a job that fails or is interrupted leaves
   no frames (a killed one leaves the hidden ones, as any output's
   temporary). */
static void s_frame_path(const state_t *state, uint64_t f, bool hidden, char *path, size_t len)
{
    if (hidden)
        snprintf(path, len, "%s/.frame_%05" PRIu64 ".png.%s", state->frames_dir, f, state->token);
    else
        snprintf(path, len, "%s/frame_%05" PRIu64 ".png", state->frames_dir, f);
}

/* Writes the frames of one unit, in order. */
static int s_emit(void *arg, uint64_t unit, const uint8_t *data, size_t len)
{
    state_t *state = arg;
    const frames_params_t *p = &state->p;
    size_t npix = (size_t) p->width * p->height;
    reader_t r = reader_new(data, len);
    for (uint64_t f = unit * p->per_unit; r.p < r.end; f++) {
        int ncolors = (int) reader_be(&r, 2);
        const uint8_t *palette = reader_take(&r, 3 * (size_t) ncolors);
        const uint8_t *indices = reader_take(&r, npix);
        if (gif_writer_frame(state->gif, palette, ncolors, indices, (int) p->delay, state->error,
                             sizeof state->error) < 0)
            return -1;
        if (!state->last_indices)
            state->last_indices = malloc(npix);
        if (state->last_indices) {
            memcpy(state->last_palette, palette, 3 * (size_t) ncolors);
            memcpy(state->last_indices, indices, npix);
        }
        if (!state->frames_dir)
            continue;
        for (size_t i = 0; i < npix; i++)
            memcpy(state->rgb + 3 * i, palette + 3 * indices[i], 3);
        char path[4096];
        s_frame_path(state, f, true, path, sizeof path);
        if (image_write_png_chosen(path, state->rgb, p->width, p->height, 3, state->error, sizeof state->error) < 0)
            return -1;
        state->written = f + 1;
    }
    return 0;
}

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    uint64_t count = 0, width = 0, height = 0, seed = 1, delay = 4, per_unit = 0;
    int scene = SCENE_RANDOM;
    const char *output = NULL, *frames_dir = NULL;
    bool help = false;
    const opt_t opts[] = {
        {"count", 0, OPT_U64, &count, 0, 0, 1, MAX_COUNT, NULL, NULL, "F", "frames (5000; zoom: 100)"},
        {"width", 0, OPT_U64, &width, 0, 0, 1, MAX_SIDE, NULL, NULL, "W", "frame width (10; zoom: 320)"},
        {"height", 0, OPT_U64, &height, 0, 0, 1, MAX_SIDE, NULL, NULL, "H", "frame height (10; zoom: 240)"},
        {"seed", 0, OPT_U64, &seed, 0, 0, 0, UINT64_MAX, NULL, NULL, "S", "seed of the random scene (1)"},
        {"delay", 0, OPT_U64, &delay, 0, 0, 0, 65535, NULL, NULL, "D", "hundredths of a second per frame (4)"},
        {"frames-per-unit", 0, OPT_U64, &per_unit, 0, 0, 1, MAX_COUNT, NULL, NULL, "P", "frames in one work unit (about 64 KiB of pixels)"},
        {"frames-dir", 0, OPT_STRING, &frames_dir, 0, 0, 0, 0, NULL, NULL, "DIR", "also write DIR/frame_00000.png ..."},
        {"scene", 0, OPT_CHOICE, &scene, 0, 0, 0, 0, "random|zoom", NULL, "SCENE", "random colours or a Mandelbrot zoom (random)"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "the animated GIF (frames.gif)"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "frames: frames rendered by workers, assembled into an animated GIF", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    bool zoom = scene == SCENE_ZOOM;
    if (!count)
        count = zoom ? 100 : 5000;
    if (!width)
        width = zoom ? 320 : 10;
    if (!height)
        height = zoom ? 240 : 10;
    if (!per_unit) {
        uint64_t fit = 65536 / (FRAME_HEADER + width * height);
        per_unit = fit < 1 ? 1 : fit > count ? count : fit;
    }
    frames_params_t p = {(uint32_t) count, (uint32_t) width, (uint32_t) height, seed, (uint32_t) delay,
                         (uint32_t) per_unit, (uint8_t) scene};
    const char *why = s_check(&p);
    if (why) {
        snprintf(err, errlen, "frames: %s", why);
        return JOB_ERROR;
    }
    state_t *state = calloc(1, sizeof *state);
    state->p = p;
    state->frames_dir = frames_dir;
    plan->params = malloc(PARAMS_LEN);
    plan->params_len = PARAMS_LEN;
    s_encode(&p, plan->params);
    plan->units = s_units(&p);
    plan->output = output;
    plan->default_output = "frames.gif";
    plan->files_dir = frames_dir;
    plan->files_prefix = "frame_";
    plan->state = state;
    return JOB_OK;
}

static int s_begin(void *self, const char *output, char *err, size_t errlen)
{
    state_t *state = self;
    if (state->frames_dir) {
        if (mkdir(state->frames_dir, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", state->frames_dir, strerror(errno));
            return -1;
        }
        /* Found unusable before any unit is computed, not at the first frame. */
        struct stat st;
        int why = stat(state->frames_dir, &st) < 0 ? errno
                  : !S_ISDIR(st.st_mode)                       ? ENOTDIR
                  : access(state->frames_dir, W_OK | X_OK) < 0 ? errno
                                                               : 0;
        if (why) {
            snprintf(err, errlen, "--frames-dir %s: %s", state->frames_dir, strerror(why));
            return -1;
        }
        state->rgb = malloc(3 * (size_t) state->p.width * state->p.height);
        uint8_t random[8] = {0};
        if (getrandom(random, sizeof random, 0) != (ssize_t) sizeof random)
            snprintf(state->token, sizeof state->token, "%08lx", (unsigned long) getpid());
        else
            for (int i = 0; i < 8; i++)
                snprintf(state->token + 2 * i, 3, "%02x", random[i]);
    }
    state->gif = gif_writer_open(output, state->p.width, state->p.height, err, errlen);
    if (!state->gif)
        return -1;
    state->reorder = reorder_new(0, s_emit, state);
    return 0;
}

/* A unit's frames: each a colour count (1..256), its palette and indices
   below that count. */
static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    const frames_params_t *p = &state->p;
    if (unit >= s_units(p))
        return JOB_MALFORMED;
    uint64_t first = unit * p->per_unit;
    uint64_t frames = p->count - first < p->per_unit ? p->count - first : p->per_unit;
    size_t npix = (size_t) p->width * p->height;
    reader_t r = reader_new(data, len);
    for (uint64_t f = 0; f < frames; f++) {
        int ncolors = (int) reader_be(&r, 2);
        if (!r.bad && (ncolors < 1 || ncolors > 256)) {
            snprintf(err, errlen, "frame %" PRIu64 ": a palette of %d colours", first + f, ncolors);
            return JOB_MALFORMED;
        }
        const uint8_t *palette = reader_take(&r, 3 * (size_t) ncolors), *indices = reader_take(&r, npix);
        if (!palette || !indices) {
            snprintf(err, errlen, "%zu bytes: cut short in frame %" PRIu64, len, first + f);
            return JOB_MALFORMED;
        }
        for (size_t i = 0; indices && i < npix; i++)
            if (indices[i] >= ncolors) {
                snprintf(err, errlen, "frame %" PRIu64 ": colour %u of a palette of %d", first + f, indices[i],
                         ncolors);
                return JOB_MALFORMED;
            }
    }
    if (!reader_done(&r)) {
        snprintf(err, errlen, "%zu bytes: more than its %" PRIu64 " frame%s", len, frames, frames == 1 ? "" : "s");
        return JOB_MALFORMED;
    }
    if (!state->error[0])
        reorder_put(state->reorder, unit, data, len);
    return 0;
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    if (state->error[0]) {
        snprintf(err, errlen, "%s", state->error);
        return -1;
    }
    if (gif_writer_close(&state->gif, true, err, errlen) < 0)
        return -1;
    /* The animation is in place: the frames take their own names, in order
       (a rename in one directory, replacing what was there, as written). */
    for (uint64_t f = 0; state->frames_dir && f < state->written; f++) {
        char hidden[4096], path[4096];
        s_frame_path(state, f, true, hidden, sizeof hidden);
        s_frame_path(state, f, false, path, sizeof path);
        if (rename(hidden, path) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
    }
    state->published = true;
    fprintf(out, "frames: wrote %s (%u frames of %ux%u, %s scene)%s%s\n", output, state->p.count, state->p.width,
            state->p.height, state->p.scene == SCENE_ZOOM ? "zoom" : "random",
            state->frames_dir ? " and PNG frames in " : "", state->frames_dir ? state->frames_dir : "");
    return 0;
}

static size_t s_held(void *self)
{
    state_t *state = self;
    return state->reorder ? reorder_memory(state->reorder) : 0;
}

static void s_destroy(void *self)
{
    state_t *state = self;
    if (!state)
        return;
    gif_writer_close(&state->gif, false, NULL, 0);
    for (uint64_t f = 0; state->frames_dir && !state->published && f < state->written; f++) {
        char hidden[4096];
        s_frame_path(state, f, true, hidden, sizeof hidden);
        unlink(hidden);   /* (those already renamed are gone from here) */
    }
    reorder_destroy(&state->reorder);
    free(state->rgb);
    free(state->last_indices);
    free(state);
}

/* The frame written last, fitted in max_side both ways: small frames
   scaled up by a whole factor (to about 640 pixels on their longer side),
   large ones down, pixel for pixel. */
static int s_preview(void *self, uint32_t max_side, job_picture_t *picture)
{
    const state_t *state = self;
    const frames_params_t *p = &state->p;
    if (!state->last_indices || max_side == 0)
        return -1;
    uint32_t side = p->width > p->height ? p->width : p->height;
    uint32_t target = max_side < 640 ? max_side : 640;
    uint32_t up = side < target ? target / side : 1, down = (side + max_side - 1) / max_side;
    up = up > 0 ? up : 1;
    down = down > 0 ? down : 1;
    uint32_t w = p->width * up / down, h = p->height * up / down;
    w = w ? w : 1, h = h ? h : 1;
    uint8_t *rgb = malloc((size_t) w * h * 3);
    if (!rgb)
        return -1;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t i = x * down / up, j = y * down / up;
            uint8_t index = state->last_indices[(size_t) j * p->width + i];
            memcpy(rgb + ((size_t) y * w + x) * 3, state->last_palette + 3 * (size_t) index, 3);
        }
    *picture = (job_picture_t) {rgb, w, h};
    return 0;
}

/* ------------------------------------------------------------ worker side */

static void *s_load(const uint8_t *params, size_t len)
{
    reader_t r = reader_new(params, len);
    frames_params_t p;
    p.count = (uint32_t) reader_be(&r, 4);
    p.width = (uint32_t) reader_be(&r, 2);
    p.height = (uint32_t) reader_be(&r, 2);
    p.seed = reader_be(&r, 8);
    p.delay = (uint32_t) reader_be(&r, 2);
    p.per_unit = (uint32_t) reader_be(&r, 4);
    p.scene = (uint8_t) reader_be(&r, 1);
    if (!reader_done(&r) || s_check(&p))
        return NULL;
    frames_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* ctx is only read: every compute thread shares it; the frame being drawn
   lives in this call's own buffers. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const frames_params_t *p = ctx;
    if (unit >= s_units(p))
        return JOB_RANGE;
    uint64_t first = unit * p->per_unit;
    uint64_t frames = p->count - first < p->per_unit ? p->count - first : p->per_unit;
    size_t npix = (size_t) p->width * p->height;
    uint8_t *rgb = malloc(3 * npix);
    uint8_t *buf = malloc(frames * (FRAME_HEADER + npix));
    if (!rgb || !buf) {
        free(rgb), free(buf);
        return JOB_FAILED;
    }
    writer_t w = {buf};
    uint8_t palette[768];
    int rc = 0;
    for (uint64_t f = first; f < first + frames && rc == 0; f++) {
        rc = p->scene == SCENE_ZOOM ? s_render_zoom(p, (uint32_t) f, rgb, cancel)
                                    : s_render_random(p, (uint32_t) f, rgb, cancel);
        if (rc != 0)
            break;
        bool exact;
        uint8_t *indices = w.p + 2 + 768;   /* written in place, moved after the palette below */
        int ncolors = image_palettize(rgb, p->width, p->height, palette, indices, &exact);
        if (ncolors < 0) {   /* memory ran out while quantising */
            rc = JOB_FAILED;
            break;
        }
        writer_be(&w, (uint64_t) ncolors, 2);
        writer_bytes(&w, palette, 3 * (size_t) ncolors);
        memmove(w.p, indices, npix);
        w.p += npix;
    }
    free(rgb);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = (size_t) (w.p - buf);
    return 0;
}

const job_kind_t frames_job = {
    .name = "frames",
    .summary = "small frames rendered by workers, assembled into an animated GIF",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .begin = s_begin,
    .accept = s_accept,
    .preview = s_preview,
    .held = s_held,
    .finish = s_finish,
    .destroy = s_destroy,
};
