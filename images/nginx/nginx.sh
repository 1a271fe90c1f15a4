#!/bin/sh
# nginx:latest: the page names the pod (its hostname); nginx runs in the
# foreground as the container's main process (SIGTERM: fast shutdown).
hostname > /var/www/html/index.html
echo ok > /var/www/html/healthz
echo "nginx: serving $(hostname) on :80"
exec nginx -g 'daemon off;'
