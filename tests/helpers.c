/* helpers: processes, files, PNG decoding and reference computations for tests. */
#include "tests/helpers.h"
#include "common/protocol.h"
#include "jobs/mandelbrot.h"

#include <errno.h>
#include <fcntl.h>
#include <criterion/criterion.h>
#include <gif_lib.h>
#include <png.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *t_bin(const char *name)
{
    static char paths[8][512];
    static int next;
    const char *dir = getenv("HYADES_BUILD");
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir && *dir ? dir : "build", name);
    return p;
}

char *t_dir;

void t_setup(void) { t_dir = t_mkdtemp(); }

void t_teardown(void)
{
    t_kill_all();
    if (!getenv("HYADES_KEEP_TEST_DIR"))
        t_rmdir(t_dir);
    free(t_dir);
    t_dir = NULL;
}

char *t_mkdtemp(void)
{
    char *dir = strdup("/tmp/hyades-test-XXXXXX");
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

void t_rmdir(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/hyades-test-", 17) != 0)
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

char *t_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Every process a test started, so that a failed test leaves none behind. */
static pid_t s_spawned[64];
static size_t s_spawned_count;

void t_kill_all(void)
{
    for (size_t i = 0; i < s_spawned_count; i++)
        if (kill(s_spawned[i], SIGKILL) == 0)
            waitpid(s_spawned[i], NULL, 0);
    s_spawned_count = 0;
}

pid_t t_spawn(char *const argv[], const char *log, char *const env[])
{
    pid_t pid = fork();
    if (pid > 0 && s_spawned_count < sizeof s_spawned / sizeof s_spawned[0])
        s_spawned[s_spawned_count++] = pid;
    if (pid != 0)
        return pid;
    int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
    for (size_t i = 0; env && env[i]; i++)
        putenv(env[i]);
    execv(argv[0], argv);
    _exit(127);
}

int t_exited(pid_t pid)
{
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r < 0 ? -2 : -1;
}

int t_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        int rc = t_exited(pid);
        if (rc >= 0 || rc == -2)
            return rc >= 0 ? rc : -1;
        if (waited >= timeout_ms) {
            int status;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(5000);
    }
}

int t_run(char *const argv[], const char *log, int timeout_ms)
{
    return t_wait(t_spawn(argv, log, NULL), timeout_ms);
}

int t_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int rc = t_wait(pid, 10000);
    return rc;
}

void t_freeze_times(pid_t pid, int times, unsigned awake_ms, unsigned frozen_ms)
{
    for (int i = 0; i < times; i++) {
        usleep(awake_ms * 1000);
        kill(pid, SIGSTOP);
        usleep(frozen_ms * 1000);
        kill(pid, SIGCONT);
    }
}

pid_t t_freeze_loop(pid_t pid, unsigned frozen_ms, unsigned awake_ms)
{
    pid_t loop = fork();
    if (loop == 0) {
        while (true) {
            kill(pid, SIGSTOP);
            usleep(frozen_ms * 1000);
            kill(pid, SIGCONT);
            usleep(awake_ms * 1000);
        }
    }
    return loop;
}

void t_freeze_loop_end(pid_t loop, pid_t pid)
{
    kill(loop, SIGKILL);
    waitpid(loop, NULL, 0);
    kill(pid, SIGCONT);
}

pid_t t_restart_loop(const char *endpoint, const char *name_format, const char *log, char *const extra[],
                     char *const env[], const unsigned *lives_ms, size_t lives, unsigned back_ms)
{
    pid_t loop = fork();
    if (loop == 0) {
        setpgid(0, 0);   /* it and its workers, killed together */
        for (unsigned round = 0;; round++) {
            char name[64];
            snprintf(name, sizeof name, name_format, round);
            pid_t f = t_worker(endpoint, name, log, extra, env);
            bool died = false;
            for (unsigned t = 0; t < lives_ms[round % lives] && !(died = waitpid(f, NULL, WNOHANG) == f); t += 5)
                usleep(5000);
            if (!died) {
                kill(f, SIGKILL);
                waitpid(f, NULL, 0);
            }
            usleep(back_ms * 1000);
        }
    }
    setpgid(loop, loop);   /* (if the child has not yet) */
    return loop;
}

void t_restart_loop_end(pid_t loop)
{
    kill(-loop, SIGKILL);
    waitpid(loop, NULL, 0);
}

char *t_read_file(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

bool t_file_contains(const char *file, const char *needle)
{
    char *text = t_read_file(file, NULL);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

bool t_wait_for(const char *file, const char *needle, char *rest, size_t rest_len, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        char *text = t_read_file(file, NULL);
        char *at = text ? strstr(text, needle) : NULL;
        if (at && strchr(at, '\n')) {
            if (rest) {
                at += strlen(needle);
                size_t n = strcspn(at, "\n");
                snprintf(rest, rest_len, "%.*s", (int) n, at);
            }
            free(text);
            return true;
        }
        free(text);
        usleep(10000);
    }
    return false;
}

long long t_json_number(const char *file, const char *key)
{
    char *text = t_read_file(file, NULL);
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    char *at = text ? strstr(text, pattern) : NULL;
    long long v = at ? strtoll(at + strlen(pattern), NULL, 10) : -1;
    free(text);
    return v;
}

double t_json_real(const char *file, const char *key)
{
    char *text = t_read_file(file, NULL);
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    char *at = text ? strstr(text, pattern) : NULL;
    double v = at ? strtod(at + strlen(pattern), NULL) : NAN;
    free(text);
    return v;
}

uint8_t *t_read_png_gray(const char *file, uint32_t *width, uint32_t *height)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, file))
        return NULL;
    if (image.format != PNG_FORMAT_GRAY) {
        png_image_free(&image);
        return NULL;
    }
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        return NULL;
    }
    *width = image.width;
    *height = image.height;
    return pixels;
}

uint8_t *t_mandelbrot_ref(uint32_t w, uint32_t h, double xmin, double xmax, double ymin, double ymax,
                          uint32_t max_iter)
{
    uint8_t *img = malloc((size_t) w * h);
    double dx = (xmax - xmin) / w, dy = (ymax - ymin) / h;
    for (uint32_t row = 0; row < h; row++) {
        for (uint32_t col = 0; col < w; col++) {
            double c_re = xmin + col * dx, c_im = ymax - row * dy;
            double x = 0, y = 0;
            uint32_t n;
            for (n = 0; n < max_iter; n++) {
                double xx = x * x, yy = y * y;
                if (xx + yy > 4.0)
                    break;
                double two_x = 2.0 * x;
                y = two_x * y + c_im;
                x = (xx - yy) + c_re;
            }
            img[(size_t) row * w + col] = (uint8_t) (255 - (uint64_t) n * 255 / max_iter);
        }
    }
    return img;
}

GifFileType *t_gif_open(const char *path)
{
    int err = 0;
    GifFileType *gif = DGifOpenFileName(path, &err);
    cr_assert_not_null(gif, "%s: %s", path, GifErrorString(err));
    cr_assert_eq(DGifSlurp(gif), GIF_OK, "%s does not decode", path);
    return gif;
}

void t_gif_close(GifFileType *gif)
{
    int err;
    DGifCloseFile(gif, &err);
}

void t_gif_pixel(const GifFileType *gif, int f, size_t i, uint8_t rgb[3])
{
    cr_assert_lt(f, gif->ImageCount);
    const SavedImage *im = &gif->SavedImages[f];
    const ColorMapObject *map = im->ImageDesc.ColorMap ? im->ImageDesc.ColorMap : gif->SColorMap;
    cr_assert_not_null(map, "frame %d has no colour table", f);
    cr_assert_lt(im->RasterBits[i], map->ColorCount);
    GifColorType c = map->Colors[im->RasterBits[i]];
    rgb[0] = c.Red, rgb[1] = c.Green, rgb[2] = c.Blue;
}

uint8_t *t_mandelbrot_kernel(mandel_params_t p)
{
    uint8_t *img = malloc((size_t) p.width * p.height), *col = malloc(p.height);
    for (uint32_t i = 0; i < p.width; i++) {
        mandel_column(&p, i, col);
        for (uint32_t j = 0; j < p.height; j++)
            img[(size_t) j * p.width + i] = col[j];
    }
    free(col);
    return img;
}

/* ------------------------------------------------------------ processes and peers */

long t_status_kib(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    char *text = t_read_file(path, NULL);
    const char *at = text ? strstr(text, field) : NULL;
    long kib = at ? strtol(at + strlen(field), NULL, 10) : -1;
    free(text);
    return kib;
}

int t_count_lines(const char *file, const char *needle)
{
    char *text = t_read_file(file, NULL);
    int n = 0;
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        n += strstr(line, needle) != NULL;
        line = end ? end + 1 : line + strlen(line);
    }
    free(text);
    return n;
}

size_t t_children(pid_t pid, pid_t *kids, size_t max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int) pid, (int) pid);
    char *text = t_read_file(path, NULL);
    size_t n = 0;
    for (char *p = text; p && *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        kids[n++] = (pid_t) v;
        p = end;
    }
    free(text);
    return n;
}

pid_t t_manager(char *const args[], const char *log, char *const env[], char *endpoint, size_t len)
{
    char *argv[64] = {(char *) t_bin("hyades-manager")};
    int argc = 1;
    for (int i = 0; args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = t_spawn(argv, log, env);
    if (endpoint) {
        cr_assert(t_wait_for(log, "listening on ", endpoint, len, 10000), "the manager did not bind");
        if (strchr(endpoint, ' '))
            *strchr(endpoint, ' ') = '\0';
    }
    return pid;
}

pid_t t_worker(const char *endpoint, const char *name, const char *log, char *const extra[], char *const env[])
{
    char *argv[40] = {(char *) t_bin("hyades-worker"), "--connect", (char *) endpoint, "--threads", "1", "--name",
                      (char *) name, "--heartbeat", "250"};
    int argc = 9;
    for (int i = 0; extra && extra[i] && argc < 39; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return t_spawn(argv, log, env);
}

zsock_t *t_peer_new(const char *endpoint, int timeout_ms)
{
    zsock_t *peer = zsock_new_dealer(endpoint);
    cr_assert_not_null(peer, "cannot connect to %s", endpoint);
    hy_socket_setup(peer);
    zsock_set_rcvtimeo(peer, timeout_ms);
    zsock_set_sndtimeo(peer, timeout_ms);
    return peer;
}

int t_peer_hello(zsock_t *peer, const char *name, unsigned threads, const char *kinds)
{
    char copy[256], *save = NULL;
    const char *list[HY_MAX_KINDS];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", kinds);
    for (char *k = strtok_r(copy, ",", &save); k && n < HY_MAX_KINDS; k = strtok_r(NULL, ",", &save))
        list[n++] = k;
    hy_msg_t hello = {.command = HY_HELLO, .name = name, .threads = threads, .heartbeat_ms = 250,
                      .release = HY_RELEASE, .kinds = list, .kind_count = n};
    return hy_send(peer, NULL, 0, &hello);
}

bool t_peer_expect(zsock_t *peer, int command, void *msg, zframe_t **frame)
{
    for (int i = 0; i < 10000; i++) {
        *frame = zframe_recv(peer);
        if (!*frame)
            return false;
        int rc = hy_decode(zframe_data(*frame), zframe_size(*frame), msg);
        if (rc == 0 && (int) ((hy_msg_t *) msg)->command == command)
            return true;
        zframe_destroy(frame);
        if (rc == HY_EVERSION)
            return false;
    }
    return false;
}

zsock_t *t_peer_join(const char *endpoint, const char *name, const char *kinds, uint32_t *heartbeat_ms,
                     uint32_t *idle_ms)
{
    zsock_t *peer = t_peer_new(endpoint, 5000);
    cr_assert_eq(t_peer_hello(peer, name, 1, kinds), 0);
    hy_msg_t msg;
    zframe_t *frame;
    cr_assert(t_peer_expect(peer, HY_WELCOME, &msg, &frame), "peer %s got no WELCOME", name);
    *heartbeat_ms = msg.heartbeat_ms;
    *idle_ms = msg.idle_ms;
    zframe_destroy(&frame);
    return peer;
}

int t_peer_result(zsock_t *peer, uint64_t job, uint64_t unit, uint8_t status, const void *data, size_t len)
{
    hy_result_t r = {.unit = unit, .status = status, .data = data, .len = len};
    hy_msg_t msg = {.command = HY_RESULT, .job = job, .results = &r, .result_count = 1};
    return hy_send(peer, NULL, 0, &msg);
}

bool t_is_default_view(const char *path, uint32_t width, uint32_t height)
{
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(path, &w, &h), *ref = t_mandelbrot_ref(width, height, -2, 0.5, -1, 1, 255);
    bool same = png && ref && w == width && h == height && memcmp(png, ref, (size_t) width * height) == 0;
    free(png), free(ref);
    return same;
}
