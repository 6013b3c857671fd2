/* The PNG writer: large images are compressed in bands on several cores.
   Whatever the path, the file decodes (libpng, and zlib on the raw chunks)
   to exactly the pixels given, and its bytes do not depend on the cores. */
#define _GNU_SOURCE   /* sched_setaffinity */
#include <criterion/criterion.h>
#include <sched.h>
#include <png.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common/image.h"
#include "tests/helpers.h"

TestSuite(image, .init = t_setup, .fini = t_teardown, .timeout = 120);

/* Pixels with smooth runs (as a plot has) and noise (which does not compress). */
static uint8_t *s_pixels(uint32_t width, uint32_t height, int channels, uint32_t seed)
{
    size_t n = (size_t) width * height * channels;
    uint8_t *p = malloc(n);
    uint32_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t col = i / channels % width, row = i / channels / width;
        p[i] = (row / 64 + col / 50) % 3 == 0 ? (uint8_t) x : (uint8_t) ((row * 3 + col) / 16);
    }
    return p;
}

static uint8_t *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t) ftell(f);
    rewind(f);
    uint8_t *data = malloc(*len ? *len : 1);
    cr_assert_eq(fread(data, 1, *len, f), *len);
    fclose(f);
    return data;
}

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Walks the chunks itself: every CRC right, IEND last; the IDATs' zlib
   stream inflates (adler32 checked by zlib) to one filter byte and a row of
   pixels per row. Returns the number of IDAT chunks. */
static size_t s_check_chunks(const uint8_t *png, size_t len, uint32_t width, uint32_t height, int channels)
{
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    cr_assert(len > 8 && memcmp(png, signature, 8) == 0, "no PNG signature");
    size_t at = 8, idats = 0, zlen = 0;
    uint8_t *z = malloc(len);
    bool end = false;
    while (at + 12 <= len && !end) {
        uint32_t n = s_be32(png + at);
        cr_assert(at + 12 + (size_t) n <= len, "chunk at %zu runs past the file", at);
        const uint8_t *type = png + at + 4, *data = type + 4;
        cr_assert_eq(s_be32(data + n), (uint32_t) crc32(0, type, n + 4), "bad CRC on %.4s", (const char *) type);
        if (memcmp(type, "IDAT", 4) == 0) {
            memcpy(z + zlen, data, n);
            zlen += n, idats++;
        }
        end = memcmp(type, "IEND", 4) == 0;
        at += 12 + (size_t) n;
    }
    cr_assert(end && at == len, "IEND missing or not last");
    uLongf raw_len = (uLongf) height * ((uLongf) width * channels + 1);
    uint8_t *raw = malloc(raw_len + 1);
    uLongf got = raw_len + 1;
    cr_assert_eq(uncompress(raw, &got, z, zlen), Z_OK, "the IDAT stream does not inflate");
    cr_assert_eq(got, raw_len, "inflated to %lu bytes, not %lu", (unsigned long) got, (unsigned long) raw_len);
    free(raw), free(z);
    return idats;
}

/* Decodes with libpng's simplified reader; compares with pixels. */
static void s_check_pixels(const uint8_t *png, size_t len, const uint8_t *pixels, uint32_t width, uint32_t height,
                           int channels)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_memory(&image, png, len), "libpng cannot read it");
    cr_assert(image.width == width && image.height == height);
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *got = malloc(PNG_IMAGE_SIZE(image));
    cr_assert(png_image_finish_read(&image, NULL, got, 0, NULL), "libpng cannot decode it: %s", image.message);
    size_t n = (size_t) width * height * channels;
    for (size_t i = 0; i < n; i++)
        if (got[i] != pixels[i])
            cr_assert_fail("%ux%u x%d: byte %zu (row %zu) is %u, not %u", width, height, channels, i,
                           i / channels / width, got[i], pixels[i]);
    free(got);
}

static size_t s_expected_bands(uint32_t width, uint32_t height, int channels)
{
    size_t line = (size_t) width * channels + 1;
    size_t rows = IMAGE_PNG_BAND_BYTES / line ? IMAGE_PNG_BAND_BYTES / line : 1;
    return (height + rows - 1) / rows;
}

Test(image, every_png_decodes_to_its_pixels_banded_or_not)
{
    const struct {
        uint32_t width, height;
        int channels;
    } cases[] = {
        {40, 30, 1},            /* small: libpng's own writer */
        {1000, 1000, 1},        /* one band's worth: libpng's own writer */
        {2047, 1024, 1},        /* just two bands (the second of one row) */
        {4000, 1201, 1},        /* three, the last short */
        {1500, 700, 3},         /* RGB */
        {100000, 31, 3},        /* the widest rows: 6 to a band */
        {1, 100000, 1},         /* the tallest column: 2-byte rows */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t w = cases[c].width, h = cases[c].height;
        int ch = cases[c].channels;
        uint8_t *pixels = s_pixels(w, h, ch, (uint32_t) c + 7);
        char name[64], err[256];
        snprintf(name, sizeof name, "case%zu.png", c);
        char *path = t_path(t_dir, name);
        cr_assert_eq(image_write_png(path, pixels, w, h, ch, err, sizeof err), 0, "%s", err);
        size_t len;
        uint8_t *png = s_slurp(path, &len);
        size_t idats = s_check_chunks(png, len, w, h, ch), bands = s_expected_bands(w, h, ch);
        if (bands >= 2)
            cr_assert_eq(idats, bands, "%ux%u x%d: %zu IDAT chunks, not one a band (%zu)", w, h, ch, idats, bands);
        s_check_pixels(png, len, pixels, w, h, ch);
        size_t mlen;   /* the same bytes in memory (the dashboard's preview) */
        uint8_t *mem = image_png_memory(pixels, w, h, ch, &mlen);
        cr_assert(mem && mlen == len && memcmp(mem, png, len) == 0, "%ux%u: memory and file differ", w, h);
        free(mem), free(png), free(path), free(pixels);
    }
}

/* Writes the image from a child that may use only one core. */
static void s_write_on_one_core(const char *path, const uint8_t *pixels, uint32_t w, uint32_t h)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        char err[256];
        _exit(sched_setaffinity(0, sizeof one, &one) == 0 && image_write_png(path, pixels, w, h, 1, err, sizeof err) == 0
                  ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the one-core writer failed");
}

Test(image, a_banded_png_has_the_same_bytes_on_one_core_as_on_all)
{
    uint32_t w = 3000, h = 3000;
    uint8_t *pixels = s_pixels(w, h, 1, 99);
    char *all = t_path(t_dir, "all.png"), *one = t_path(t_dir, "one.png"), err[256];
    cr_assert_eq(image_write_png(all, pixels, w, h, 1, err, sizeof err), 0, "%s", err);
    s_write_on_one_core(one, pixels, w, h);
    size_t alen, olen;
    uint8_t *a = s_slurp(all, &alen), *o = s_slurp(one, &olen);
    cr_assert(alen == olen && memcmp(a, o, alen) == 0, "the bytes depend on the cores (%zu and %zu bytes)", alen,
              olen);
    cr_assert_eq(s_check_chunks(a, alen, w, h, 1), s_expected_bands(w, h, 1));
    free(a), free(o), free(all), free(one), free(pixels);
}

static size_t s_vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* With too little memory for every band's buffer at once, the bands are
   compressed and written one at a time: the file is still written, exact,
   and byte for byte the one written with memory to spare. */
Test(image, short_of_memory_for_the_bands_the_png_is_still_written)
{
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("AddressSanitizer's allocator maps memory of its own");
#endif
    uint32_t w = 8000, h = 10000;   /* 80 MB: 39 bands, whose buffers would take 20 MB */
    uint8_t *pixels = s_pixels(w, h, 1, 5);
    char *path = t_path(t_dir, "tight.png");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        cpu_set_t one;   /* one core: no threads, whose stacks would take the room first */
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        /* No new mappings from here on; the room malloc already has is
           filled with ballast, and 2.4 MB of it given back: enough for
           libpng's writer, not for the bands' 20 MB. */
        struct rlimit limit;
        limit.rlim_cur = limit.rlim_max = s_vm_size();
        if (sched_setaffinity(0, sizeof one, &one) != 0 || setrlimit(RLIMIT_AS, &limit) != 0)
            _exit(2);
        enum { BALLAST = 8192, GIVE_BACK = 40 };
        static void *ballast[BALLAST];
        size_t n = 0;
        while (n < BALLAST && (ballast[n] = malloc(60 << 10)))
            n++;
        if (n == BALLAST || n < GIVE_BACK)
            _exit(2);
        for (size_t i = n - GIVE_BACK; i < n; i++)
            free(ballast[i]);
        char err[256];
        int rc = image_write_png(path, pixels, w, h, 1, err, sizeof err);
        _exit(rc == 0 ? 0 : rc == -2 ? 2 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the writer died");
    cr_assert_neq(WEXITSTATUS(status), 2, "cannot set the limits");
    cr_assert_eq(WEXITSTATUS(status), 0, "the PNG was not written with 2.4 MB to spare");
    size_t len, free_len;
    uint8_t *png = s_slurp(path, &len);
    cr_assert_eq(s_check_chunks(png, len, w, h, 1), s_expected_bands(w, h, 1), "not one IDAT a band");
    s_check_pixels(png, len, pixels, w, h, 1);
    char *unlimited = t_path(t_dir, "free.png"), err[256];
    cr_assert_eq(image_write_png(unlimited, pixels, w, h, 1, err, sizeof err), 0, "%s", err);
    uint8_t *free_png = s_slurp(unlimited, &free_len);
    cr_assert(len == free_len && memcmp(png, free_png, len) == 0, "short of memory, the bytes differ");
    free(png), free(free_png), free(unlimited), free(path), free(pixels);
}
