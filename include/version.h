/* version.h -- the release number, shown by --version and in User-Agent. */
#ifndef FO_VERSION_H
#define FO_VERSION_H

#define FO_VERSION "0.1.0"

#endif /* FO_VERSION_H */
