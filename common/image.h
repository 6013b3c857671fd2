/* image: output image writers (PNG through libpng). */
#ifndef HY_IMAGE_H
#define HY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Writes an 8-bit image of width x height pixels, rows top to bottom, each row
   width * channels bytes (channels 1: grayscale, 3: RGB). The file appears
   whole or not at all: it is written beside path and renamed into place.
   Returns 0, or -1 with a one-line reason in err. */
int image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, char *err, size_t errlen);

#endif
