// The site's data.js for a page in a frame of a DOM test: the test's data, from its parent.
globalThis.CVAE_SITE = parent.SITE_FOR_FRAME;
