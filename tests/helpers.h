/* helpers: what the test suites share: processes, temporary directories,
   PNG decoding and an independent Mandelbrot reference. */
#ifndef HY_TEST_HELPERS_H
#define HY_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A private temporary directory for each test (t_setup), removed with every
   process the test started (t_teardown): .init and .fini of suites. */
extern char *t_dir;
void t_setup(void);
void t_teardown(void);

/* Path of a built program: $HYADES_BUILD/name (default build/name). Static buffer per call slot. */
const char *t_bin(const char *name);
/* A new private directory; removed with everything in it by t_rmdir. Caller frees. */
char *t_mkdtemp(void);
void t_rmdir(const char *dir);
/* dir/name in a new string; caller frees. */
char *t_path(const char *dir, const char *name);

/* Starts argv (NULL-terminated) with stdout and stderr appended to log
   (NULL: /dev/null) and extra environment "K=V" strings (NULL-terminated or NULL). */
pid_t t_spawn(char *const argv[], const char *log, char *const env[]);
/* Kills (SIGKILL) every process t_spawn started that is still there: for
   suite teardowns, so that a failed assertion leaves no process behind. */
void t_kill_all(void);
/* Waits for pid up to timeout_ms; returns its exit status, 128+signal when
   killed, or -1 on time-out (the process is then killed). */
int t_wait(pid_t pid, int timeout_ms);
/* pid's exit status as t_wait gives it if it has ended, -1 while it runs
   (-2: not a child of ours); it is not killed. */
int t_exited(pid_t pid);
/* t_spawn + t_wait. */
int t_run(char *const argv[], const char *log, int timeout_ms);
/* SIGTERM, then SIGKILL after 10 s (a worker gives running units 3 s to
   finish, and is gone within 10 s whatever they do); returns the exit
   status, -1 when it had to be killed. */
int t_stop(pid_t pid);
/* times x: awake_ms, then pid frozen (SIGSTOP) for frozen_ms and let go. */
void t_freeze_times(pid_t pid, int times, unsigned awake_ms, unsigned frozen_ms);
/* A child that freezes pid for frozen_ms, lets it run awake_ms, and again,
   until t_freeze_loop_end(loop, pid), which stops it and lets pid go. */
pid_t t_freeze_loop(pid_t pid, unsigned frozen_ms, unsigned awake_ms);
void t_freeze_loop_end(pid_t loop, pid_t pid);
/* A child that starts a worker (name_format with the round number, as
   printf: "f-%u", or a plain name; env as for t_spawn), kills it (SIGKILL)
   after lives_ms[round % lives] ms unless it died before, waits back_ms,
   and again, until t_restart_loop_end(loop) kills it with its last
   worker. */
pid_t t_restart_loop(const char *endpoint, const char *name_format, const char *log, char *const extra[],
                     char *const env[], const unsigned *lives_ms, size_t lives, unsigned back_ms);
void t_restart_loop_end(pid_t loop);

/* Waits until file holds a line containing needle; copies the rest of that
   line after needle into rest (if not NULL). Returns false on time-out. */
bool t_wait_for(const char *file, const char *needle, char *rest, size_t rest_len, int timeout_ms);
/* Whether file contains needle. */
bool t_file_contains(const char *file, const char *needle);
/* The whole file as a string (NUL-terminated), size in *len; NULL if absent. Caller frees. */
char *t_read_file(const char *file, size_t *len);
/* The unsigned number after "\"key\":" in a JSON file, or -1. */
long long t_json_number(const char *file, const char *key);
/* The same as a real number; NAN when absent. */
double t_json_real(const char *file, const char *key);

/* A field of /proc/PID/status in KiB ("VmRSS:", "VmHWM:"), or -1. */
long t_status_kib(pid_t pid, const char *field);
/* How many lines of file contain needle. */
int t_count_lines(const char *file, const char *needle);
/* Child processes of pid (up to max) into kids; returns how many. */
size_t t_children(pid_t pid, pid_t *kids, size_t max);

/* Starts hyades-manager with args (NULL-terminated) and environment env
   (NULL-terminated or NULL); with endpoint, waits until it listens and copies
   the endpoint it bound there. */
pid_t t_manager(char *const args[], const char *log, char *const env[], char *endpoint, size_t len);
/* Starts hyades-worker --connect endpoint --threads 1 --name name
   --heartbeat 250, then extra (NULL-terminated or NULL), with env. */
pid_t t_worker(const char *endpoint, const char *name, const char *log, char *const extra[], char *const env[]);

/* A peer written in the test that speaks the wire protocol (a DEALER). */
struct _zsock_t;
struct _zframe_t;
/* Connects to endpoint; receives time out after timeout_ms. */
struct _zsock_t *t_peer_new(const char *endpoint, int timeout_ms);
/* Sends HELLO (this protocol version) naming kinds (comma-separated, e.g. "mandelbrot,pi"). */
int t_peer_hello(struct _zsock_t *peer, const char *name, unsigned threads, const char *kinds);
/* Receives until a message of command arrives (others skipped), within the
   receive time-out: its frame in *frame (caller destroys), decoded into msg
   (which points into it). False on time-out or another version. */
bool t_peer_expect(struct _zsock_t *peer, int command, void *msg, struct _zframe_t **frame);
/* t_peer_new (5 s time-out) + t_peer_hello (one thread) + the WELCOME,
   asserted: returns the joined peer; *heartbeat_ms and *idle_ms get
   WELCOME's intervals. */
struct _zsock_t *t_peer_join(const char *endpoint, const char *name, const char *kinds, uint32_t *heartbeat_ms,
                             uint32_t *idle_ms);
/* Sends one RESULT of one unit. */
int t_peer_result(struct _zsock_t *peer, uint64_t job, uint64_t unit, uint8_t status, const void *data, size_t len);

/* Decodes an 8-bit grayscale PNG; caller frees. NULL if not such a PNG. */
uint8_t *t_read_png_gray(const char *file, uint32_t *width, uint32_t *height);

/* Decodes a whole GIF (giflib), asserting that it does; t_gif_close frees it. */
struct GifFileType *t_gif_open(const char *path);
void t_gif_close(struct GifFileType *gif);
/* The colour (r, g, b) of pixel i of frame f as decoded, asserting a valid index. */
void t_gif_pixel(const struct GifFileType *gif, int f, size_t i, uint8_t rgb[3]);

/* The picture the mandelbrot job must produce, from its kernel run in this
   process (the kernels are checked against the reference below in the
   mandelbrot suite); faster than the reference for deep views. Caller frees. */
struct mandel_params;
uint8_t *t_mandelbrot_kernel(struct mandel_params p);

/* The Mandelbrot picture written straight from SPEC 3.1, row-major. Caller frees. */
uint8_t *t_mandelbrot_ref(uint32_t w, uint32_t h, double xmin, double xmax, double ymin, double ymax,
                          uint32_t max_iter);
/* Whether the PNG at path is the default view (-2..0.5 x -1..1, max-iter
   255) of width x height, pixel for pixel, by t_mandelbrot_ref. */
bool t_is_default_view(const char *path, uint32_t width, uint32_t height);

#endif
