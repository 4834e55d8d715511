/* Internal to worker/model: strings from files (tensor names, config
 * values) go into one-line error messages only when they hold no control
 * characters, so a corrupt file cannot break a message across lines. */
#ifndef SCANFLASH_MODEL_TEXT_H
#define SCANFLASH_MODEL_TEXT_H

/* s itself, or "(unprintable)" when it holds a byte below 0x20 or 0x7f. */
const char *sf_printable(const char *s);

#endif
