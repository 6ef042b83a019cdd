"""One router per resource: auth, accounts, cases (queue, status, images), masks (own mask,
submissions), decisions (review material, review / arbitration) and admin (settings, audit)."""
