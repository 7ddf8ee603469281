#!/usr/bin/env bash
# Remake the README screenshots from sample_data (needs: chromium, libreoffice-calc-nogui,
# poppler-utils). Not part of CI: the pictures are documentation, the tests check the files.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pkgreport report sample_data -o "$out" -q
html=$(ls "$out"/pkgreport-*.html)
xlsx=$(ls "$out"/pkgreport-*.xlsx)

shot() {  # shot WIDTH HEIGHT FILE: the top of the page in a window that size
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --disable-sync --user-data-dir="$out/chromium" \
    --hide-scrollbars --window-size="$1,$2" --screenshot="$3" "file://$html"
}
shot 1400 1500 docs/report-html.png
shot 390 1400 docs/report-phone.png

# The workbook as LibreOffice prints it: the first page of the Cases sheet (the footer names it).
soffice -env:UserInstallation="file://$out/profile" --headless --norestore \
  --convert-to pdf --outdir "$out" "$xlsx" >/dev/null
pdf="${xlsx%.xlsx}.pdf"
pages=$(pdfinfo "$pdf" | awk '/^Pages:/ {print $2}')
for page in $(seq 1 "$pages"); do
  if pdftotext -f "$page" -l "$page" -layout "$pdf" - | grep -q "Cases, as of"; then
    pdftoppm -f "$page" -l "$page" -singlefile -png -r 90 "$pdf" docs/report-xlsx
    break
  fi
done
echo "wrote docs/report-html.png docs/report-phone.png docs/report-xlsx.png"
