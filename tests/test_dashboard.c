/* The dashboard, end to end: a real manager with --dashboard, read over real
   HTTP (a small client here), checked with jansson, promtool, libpng and
   headless Chromium; hostile requests; and the job's output still exact. */
#include "tests/helpers.h"
#include "jobs/mandelbrot.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <png.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(dashboard, .init = t_setup, .fini = t_teardown, .timeout = 120);

/* ------------------------------------------------------------ a client */

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends request as it is and reads the whole answer (the server closes:
   HTTP/1.0). Returns the status code (0: no answer), the body in *body. */
static int s_raw(int port, const char *request, size_t request_len, char **body, size_t *len)
{
    int fd = s_connect(port);
    cr_assert_geq(fd, 0, "cannot connect to the dashboard: %s", strerror(errno));
    size_t sent = 0;
    while (sent < request_len) {
        ssize_t n = send(fd, request + sent, request_len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;   /* the server may refuse early: read what it said */
        sent += (size_t) n;
    }
    size_t cap = 65536, have = 0;
    char *text = malloc(cap);
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, 10000) == 1) {
        if (have + 4096 > cap)
            text = realloc(text, cap *= 2);
        ssize_t n = recv(fd, text + have, cap - have - 1, 0);
        if (n <= 0)
            break;
        have += (size_t) n;
    }
    close(fd);
    text[have] = '\0';
    int code = 0;
    sscanf(text, "HTTP/1.%*d %d", &code);
    char *start = strstr(text, "\r\n\r\n");
    if (body) {
        size_t skip = start ? (size_t) (start + 4 - text) : have;
        *len = have - skip;
        *body = malloc(*len + 1);
        memcpy(*body, text + skip, *len);
        (*body)[*len] = '\0';
    }
    free(text);
    return code;
}

static int s_get(int port, const char *path, char **body, size_t *len)
{
    char request[512];
    snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    return s_raw(port, request, strlen(request), body, len);
}

static json_t *s_status(int port)
{
    char *body;
    size_t len;
    cr_assert_eq(s_get(port, "/api/status", &body, &len), 200);
    json_error_t error;
    json_t *status = json_loadb(body, len, 0, &error);
    cr_assert_not_null(status, "/api/status is not JSON: %s (%s)", error.text, body);
    free(body);
    return status;
}

/* The dashboard's port, from the manager's log. */
static int s_port(const char *log)
{
    char rest[256];
    cr_assert(t_wait_for(log, "dashboard at http://127.0.0.1:", rest, sizeof rest, 10000), "no dashboard URL logged");
    return atoi(rest);
}

static long long s_metric(const char *text, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *at = strstr(text, needle);
    cr_assert_not_null(at, "no %s in the metrics", name);
    return atoll(at + strlen(needle));
}

/* promtool check metrics accepts text. */
static void s_promtool(const char *text)
{
    char *file = t_path(t_dir, "metrics.txt"), *log = t_path(t_dir, "promtool.log");
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s 2>&1", file, log);
    int rc = system(cmd);
    char *said = t_read_file(log, NULL);
    cr_assert_eq(rc, 0, "promtool check metrics refused them: %s", said ? said : "");
    free(said), free(file), free(log);
}

static const mandel_params_t s_view = {301, 203, -2, 0.5, -1, 1, 255, 1};

/* The output is SPEC 3.1's picture, byte for byte. */
static void s_assert_exact(const char *png)
{
    uint32_t w = 0, h = 0;
    uint8_t *got = t_read_png_gray(png, &w, &h);
    cr_assert_not_null(got, "%s is not a grayscale PNG", png);
    cr_assert(w == s_view.width && h == s_view.height);
    uint8_t *want = t_mandelbrot_ref(w, h, s_view.xmin, s_view.xmax, s_view.ymin, s_view.ymax, s_view.max_iter);
    cr_assert_eq(memcmp(got, want, (size_t) w * h), 0, "the output differs from the computation");
    free(got), free(want);
}

static pid_t s_slow_job(const char *log, const char *out, const char *json, const char *sleep_ms)
{
    char *args[] = {"--dashboard", "127.0.0.1:0", "--local", "2", "--json", (char *) json, "mandelbrot",
                    "--width", "301", "--height", "203", "-o", (char *) out, NULL};
    char failpoints[64];
    snprintf(failpoints, sizeof failpoints, "HYADES_FAILPOINTS=sleep:%s", sleep_ms);
    char *env[] = {failpoints, NULL};
    return t_manager(args, log, env, NULL, 0);
}

/* ------------------------------------------------------------ the tests */

Test(dashboard, status_metrics_and_preview_follow_a_running_job)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "d.png"), *json = t_path(t_dir, "d.json");
    pid_t manager = s_slow_job(log, out, json, "60");   /* 301 units of 60 ms on 2 workers: about 9 s */
    int port = s_port(log);

    json_t *first = s_status(port);
    /* Under load the second worker can join after the first results. */
    for (int i = 0; i < 100 && (json_integer_value(json_object_get(first, "done")) == 0
                                || json_array_size(json_object_get(first, "workers")) < 2); i++) {
        usleep(50000);
        json_decref(first);
        first = s_status(port);
    }
    json_t *job = json_object_get(first, "job");
    cr_assert_str_eq(json_string_value(json_object_get(job, "kind")), "mandelbrot");
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "running");
    cr_assert_str_eq(json_string_value(json_object_get(job, "output")), out);
    cr_assert_eq(json_integer_value(json_object_get(first, "units")), 301);
    json_t *workers = json_object_get(first, "workers");
    cr_assert_eq(json_array_size(workers), 2, "two workers, not %zu", json_array_size(workers));
    const char *name = json_string_value(json_object_get(json_array_get(workers, 0), "name"));
    cr_assert(name && strncmp(name, "local-", 6) == 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(workers, 0), "host")), "local");
    cr_assert(json_is_true(json_object_get(first, "preview")));
    cr_assert(json_array_size(json_object_get(first, "events")) >= 2, "the joins are events");

    char *m1, *m2;
    size_t m1_len, m2_len;
    cr_assert_eq(s_get(port, "/metrics", &m1, &m1_len), 200);
    s_promtool(m1);
    cr_assert_eq(s_metric(m1, "hyades_units_total"), 301);
    cr_assert_eq(s_metric(m1, "hyades_workers_connected"), 2);
    cr_assert_not_null(strstr(m1, "hyades_worker_units_done_total{worker=\"local-1\"}"));
    cr_assert_not_null(strstr(m1, "\nhyades_manager_cpu_seconds_total "));

    /* A picture of the image so far: computed columns gray, missing ones blue. */
    char *png;
    size_t png_len;
    cr_assert_eq(s_get(port, "/preview.png", &png, &png_len), 200);
    png_image image = {.version = PNG_IMAGE_VERSION};
    cr_assert(png_image_begin_read_from_memory(&image, png, png_len), "/preview.png does not decode");
    image.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(image));
    cr_assert(png_image_finish_read(&image, NULL, rgb, 0, NULL));
    cr_assert_eq(image.width, 301);
    size_t gray = 0, blue = 0;
    for (size_t i = 0; i < (size_t) image.width * image.height; i++) {
        const uint8_t *px = rgb + 3 * i;
        gray += px[0] == px[1] && px[1] == px[2];
        blue += px[2] > px[0] + 30;
    }
    cr_assert(gray > 0 && blue > 0, "not a partial image: %zu gray, %zu missing pixels", gray, blue);
    free(rgb), free(png);

    usleep(600000);
    json_t *later = s_status(port);
    cr_assert_gt(json_integer_value(json_object_get(later, "done")), json_integer_value(json_object_get(first, "done")),
                 "the status did not change");
    cr_assert_eq(s_get(port, "/metrics", &m2, &m2_len), 200);
    cr_assert_gt(s_metric(m2, "hyades_units_done_total"), s_metric(m1, "hyades_units_done_total"));
    free(m1), free(m2);
    json_decref(first), json_decref(later);

    cr_assert_eq(t_wait(manager, 60000), 0);
    s_assert_exact(out);
    /* Gone with the manager. */
    int fd = s_connect(port);
    cr_assert_lt(fd, 0, "the dashboard's port is still open after the manager exited");
    free(log), free(out), free(json);
}

Test(dashboard, the_page_renders_in_a_real_browser)
{
    if (system("command -v chromium >/dev/null 2>&1") != 0)
        cr_skip_test("chromium is not installed (deploy/install-deps.sh test installs it)");
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "d.png"), *json = t_path(t_dir, "d.json");
    char *dom = t_path(t_dir, "dom.html"), *err = t_path(t_dir, "chromium.log");
    pid_t manager = s_slow_job(log, out, json, "500");   /* long past Chromium's start; stopped once read */
    int port = s_port(log);
    char url[64], budget[32] = "--virtual-time-budget=3000", profile[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium", t_dir);
    char *argv[] = {"/bin/sh", "-c", "exec chromium \"$@\" > \"$DOM\"", "sh", "--headless", "--no-sandbox",
                    "--disable-gpu", "--no-first-run", profile, budget, "--dump-dom", url, NULL};
    char env_dom[600];
    snprintf(env_dom, sizeof env_dom, "DOM=%s", dom);
    char *env[] = {env_dom, NULL};
    cr_assert_eq(t_wait(t_spawn(argv, err, env), 90000), 0, "chromium failed (see %s)", err);
    char *html = t_read_file(dom, NULL);
    cr_assert_not_null(html);
    cr_assert_not_null(strstr(html, "id=\"job-kind\">mandelbrot<"), "the job is not shown: %.2000s", html);
    cr_assert_not_null(strstr(html, ">local-1<"), "the workers are not shown");
    const char *pct = strstr(html, "id=\"progress-percent\"");
    cr_assert_not_null(pct);
    const char *gt = strchr(pct, '>');
    cr_assert(gt && strchr(gt, '%') && strchr(gt, '%') < strchr(gt, '<'), "no percentage shown");
    const char *img = strstr(html, "<img");
    while (img && (!strstr(img, "id=\"preview\"") || strstr(img, "id=\"preview\"") > strchr(img, '>')))
        img = strstr(img + 4, "<img");
    cr_assert_not_null(img, "no preview image");
    cr_assert(strstr(img, "preview.png") && strstr(img, "preview.png") < strchr(img, '>'),
              "the preview is not loaded from /preview.png");
    free(html);
    kill(manager, SIGTERM);
    t_wait(manager, 20000);
    free(log), free(out), free(json), free(dom), free(err);
}

Test(dashboard, hostile_requests_get_errors_and_the_job_stays_exact)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "d.png"), *json = t_path(t_dir, "d.json");
    pid_t manager = s_slow_job(log, out, json, "40");   /* about 6 s */
    int port = s_port(log);
    char *body;
    size_t len;

    cr_assert_eq(s_get(port, "/nowhere", &body, &len), 404);
    free(body);
    /* A name other sites could point here (DNS rebinding) is not this dashboard. */
    const char *rebound = "GET /api/status HTTP/1.1\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n";
    cr_assert_eq(s_raw(port, rebound, strlen(rebound), &body, &len), 421);
    cr_assert_null(strstr(body, "mandelbrot"), "the status went to a foreign Host");
    free(body);
    const char *local = "GET /api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    cr_assert_eq(s_raw(port, local, strlen(local), &body, &len), 200);
    free(body);
    cr_assert_eq(s_get(port, "/../../etc/passwd", &body, &len), 404);
    cr_assert_null(strstr(body, "root:"));
    free(body);
    const char *post = "POST /api/status HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello";
    cr_assert_eq(s_raw(port, post, strlen(post), &body, &len), 405, "the dashboard accepted a POST");
    free(body);
    static const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n";
    int code = s_raw(port, garbage, sizeof garbage - 1, NULL, NULL);
    cr_assert(code == 400 || code == 0, "garbage got %d", code);
    /* A header far beyond what one request may hold. */
    size_t big = 200000;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, 64, "GET / HTTP/1.0\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 5);
    code = s_raw(port, huge, (size_t) n + big + 4, NULL, NULL);
    cr_assert(code == 431 || code == 413 || code == 400 || code == 0, "an oversized request got %d", code);
    free(huge);

    /* Many connections at once, some idle, some asking: all answered or
       refused cleanly, and the dashboard still answers afterwards. */
    enum { MANY = 300 };
    int fds[MANY], open_count = 0;
    for (int i = 0; i < MANY; i++) {
        fds[i] = s_connect(port);
        if (fds[i] >= 0 && i % 2 == 0) {
            const char *get = "GET /api/status HTTP/1.0\r\n\r\n";
            send(fds[i], get, strlen(get), MSG_NOSIGNAL);
        }
        open_count += fds[i] >= 0;
    }
    cr_assert_gt(open_count, 0);
    for (int i = 0; i < MANY; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* (the server may take a moment to see the closes and free its slots) */
    for (int i = 0; i < 100 && s_get(port, "/api/status", &body, &len) != 200; i++) {
        free(body);
        usleep(50000);
    }
    free(body);
    json_t *status = s_status(port);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(status, "job"), "kind")), "mandelbrot");
    json_decref(status);

    cr_assert_eq(t_wait(manager, 60000), 0);
    s_assert_exact(out);
    cr_assert_eq(t_json_number(json, "done"), 301);
    free(log), free(out), free(json);
}

Test(dashboard, pi_shows_its_running_estimate)
{
    char *log = t_path(t_dir, "m.log");
    char *args[] = {"--dashboard", "127.0.0.1:0", "--local", "2", "pi", "--samples", "2000000", "--units", "200", NULL};
    char *env[] = {"HYADES_FAILPOINTS=sleep:60", NULL};
    pid_t manager = t_manager(args, log, env, NULL, 0);
    int port = s_port(log);
    json_t *status = s_status(port);
    for (int i = 0; i < 100 && !json_is_object(json_object_get(status, "estimate")); i++) {
        usleep(50000);
        json_decref(status);
        status = s_status(port);
    }
    json_t *estimate = json_object_get(status, "estimate");
    cr_assert(json_is_object(estimate), "no running estimate");
    double value = json_real_value(json_object_get(estimate, "value"));
    cr_assert(value > 3.0 && value < 3.3, "estimate %f", value);
    cr_assert_not_null(strstr(json_string_value(json_object_get(estimate, "text")), "pi ~ 3."));
    char *metrics;
    size_t len;
    cr_assert_eq(s_get(port, "/metrics", &metrics, &len), 200);
    cr_assert_not_null(strstr(metrics, "\nhyades_job_estimate 3."));
    s_promtool(metrics);
    free(metrics);
    /* Its picture: the estimate against units done, settling around pi. */
    char *png;
    cr_assert_eq(s_get(port, "/preview.png", &png, &len), 200);
    png_image image = {.version = PNG_IMAGE_VERSION};
    cr_assert(png_image_begin_read_from_memory(&image, png, len), "pi's chart does not decode");
    image.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(image));
    cr_assert(png_image_finish_read(&image, NULL, rgb, 0, NULL));
    size_t line = 0;
    for (size_t i = 0; i < (size_t) image.width * image.height; i++)
        line += rgb[3 * i] == 240 && rgb[3 * i + 1] == 190;
    cr_assert_gt(line, 0, "no estimate drawn");
    free(rgb), free(png);
    json_decref(status);
    cr_assert_eq(t_wait(manager, 60000), 0);
    free(log);
}

Test(dashboard, a_batch_lists_its_jobs_and_their_states)
{
    char *log = t_path(t_dir, "m.log"), *file = t_path(t_dir, "jobs.txt");
    FILE *f = fopen(file, "w");
    fprintf(f, "noop --units 200 --sleep-ms 50\n# a comment\npi --samples 1000 --units 4\n");
    fclose(f);
    char *args[] = {"--dashboard", "127.0.0.1:0", "--local", "2", "--batch", file, NULL};
    pid_t manager = t_manager(args, log, NULL, NULL, 0);
    int port = s_port(log);
    json_t *status = s_status(port);
    json_t *jobs = json_object_get(json_object_get(status, "batch"), "jobs");
    for (int i = 0; i < 100 && json_array_size(jobs) == 0; i++) {
        usleep(20000);
        json_decref(status);
        status = s_status(port);
        jobs = json_object_get(json_object_get(status, "batch"), "jobs");
    }
    cr_assert_eq(json_array_size(jobs), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(jobs, 1), "line")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(jobs, 0), "kind")), "noop");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(jobs, 0), "state")), "running");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(jobs, 1), "state")), "pending");
    json_decref(status);
    cr_assert_eq(t_wait(manager, 60000), 0);
    free(log), free(file);
}

Test(dashboard, a_bad_address_is_a_clear_error)
{
    char *log = NULL;
    char *bad[][2] = {{"--dashboard", "no-port-here"}, {"--dashboard", "127.0.0.1:99999"},
                      {"--dashboard", "127.0.0.1:+0"}, {"--dashboard", "127.0.0.1:000000000080"},
                      {"--dashboard", "203.0.113.7:8080"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.log", i);
        free(log);
        log = t_path(t_dir, name);
        char *argv[] = {(char *) t_bin("hyades-manager"), bad[i][0], bad[i][1], "--local", "1", "noop", NULL};
        int rc = t_run(argv, log, 10000);
        /* A malformed address is a bad command line; one that cannot be listened on, a failure. */
        cr_assert_eq(rc, i < 4 ? 2 : 1, "%s %s: exit %d", bad[i][0], bad[i][1], rc);
        cr_assert(t_file_contains(log, "--dashboard"), "no clear error for %s", bad[i][1]);
        cr_assert_eq(t_count_lines(log, "hyades-manager:"), 1, "not one line");
    }
    /* The message quotes what was given (it said "--dashboard 127.0.0.1::"
       for "localhost:"). */
    char *empty_port[] = {(char *) t_bin("hyades-manager"), "--dashboard", "localhost:", "--local", "1", "noop", NULL};
    cr_assert_eq(t_run(empty_port, log, 10000), 2);
    cr_assert(t_file_contains(log, "--dashboard 'localhost:': the port must be a number from 0 to 65535"));
    /* A port already taken. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *) &sa, &sl);
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", ntohs(sa.sin_port));
    free(log);
    log = t_path(t_dir, "taken.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--dashboard", taken, "--local", "1", "noop", NULL};
    cr_assert_neq(t_run(argv, log, 10000), 0, "a port in use was accepted");
    cr_assert(t_file_contains(log, "Address already in use"), "the reason is not given");
    cr_assert_eq(t_count_lines(log, "hyades-manager:"), 1, "not one line");
    close(fd);
    free(log);
}

/* libmicrohttpd is loaded only for --dashboard: a broken copy found first
   fails that run with one clear line, and runs without it do not notice. */
Test(dashboard, a_broken_libmicrohttpd_fails_only_dashboard_runs_and_says_so)
{
    char *lib = t_path(t_dir, MHD_SONAME), *log = t_path(t_dir, "broken.log");
    FILE *f = fopen(lib, "w");
    cr_assert_not_null(f);
    fputs("not a library\n", f);
    fclose(f);
    setenv("LD_LIBRARY_PATH", t_dir, 1);   /* searched before the system's copy */
    char *with[] = {(char *) t_bin("hyades-manager"), "--dashboard", "127.0.0.1:0", "--local", "1", "noop", NULL};
    cr_assert_eq(t_run(with, log, 10000), 1);
    cr_assert(t_file_contains(log, "--dashboard: cannot load libmicrohttpd"));
    cr_assert_eq(t_count_lines(log, "hyades-manager:"), 1, "not one line");
    char *without[] = {(char *) t_bin("hyades-manager"), "--local", "1", "noop", NULL};
    cr_assert_eq(t_run(without, log, 10000), 0, "a run without --dashboard loaded the broken library");
    unsetenv("LD_LIBRARY_PATH");
    free(lib), free(log);
}

/* The picture fits in 1024 x 1024 whatever the output's shape (a tall frame
   scaled up for its narrowness must not become gigabytes on the event loop). */
Test(dashboard, pictures_stay_small_for_any_output_shape)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "tall.gif");
    char *args[] = {"--dashboard", "127.0.0.1:0", "--local", "2", "frames", "--width", "10", "--height", "3000",
                    "--count", "60", "--frames-per-unit", "1", "-o", out, NULL};
    char *env[] = {"HYADES_FAILPOINTS=sleep:200", NULL};
    pid_t manager = t_manager(args, log, env, NULL, 0);
    int port = s_port(log);
    char *png = NULL;
    size_t len = 0;
    int code = 404;
    for (int i = 0; i < 100 && code != 200; i++) {
        free(png);
        code = s_get(port, "/preview.png", &png, &len);
        if (code != 200)
            usleep(50000);
    }
    cr_assert_eq(code, 200, "no picture of the frames");
    png_image image = {.version = PNG_IMAGE_VERSION};
    cr_assert(png_image_begin_read_from_memory(&image, png, len));
    cr_assert(image.width <= 1024 && image.height <= 1024, "a %ux%u picture", image.width, image.height);
    cr_assert_geq(image.height, 640, "a tall frame is scaled up to about 640 pixels (%u)", image.height);
    png_image_free(&image);
    free(png);
    cr_assert_eq(t_wait(manager, 60000), 0);
    free(log), free(out);
}

/* pi's running estimate is on the terminal's progress line too. */
Test(dashboard, pi_shows_its_running_estimate_on_the_progress_line)
{
    if (system("command -v script >/dev/null 2>&1") != 0)
        cr_skip_test("script(1) is not installed (package bsdutils)");
    char *log = t_path(t_dir, "tty.log"), cmd[1024];
    /* script(1) gives the manager a terminal, so that it draws the progress line. */
    snprintf(cmd, sizeof cmd, "HYADES_FAILPOINTS=sleep:30 %s --local 2 pi --samples 2000000 --units 100",
             t_bin("hyades-manager"));
    char *argv[] = {"/usr/bin/script", "-q", "-e", "-c", cmd, "/dev/null", NULL};
    cr_assert_eq(t_run(argv, log, 60000), 0);
    char *text = t_read_file(log, NULL);
    cr_assert_not_null(text);
    const char *at = strstr(text, "units/s");
    cr_assert_not_null(at, "no progress line");
    cr_assert_not_null(strstr(text, "workers, pi ~ 3."), "no running estimate on the progress line");
    free(text), free(log);
}
