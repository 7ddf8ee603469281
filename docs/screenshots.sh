#!/usr/bin/env bash
# Remake the README screenshots from sample_data (needs: chromium, libreoffice-calc, xvfb,
# xdotool, imagemagick). Not part of CI: the pictures are documentation, the tests check the files.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
pkgreport report sample_data -o "$out" -q
html=$(ls "$out"/pkgreport-*.html)
xlsx=$(ls "$out"/pkgreport-*.xlsx)
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --disable-sync --user-data-dir="$out/chromium" \
  --hide-scrollbars --window-size=1200,1500 --screenshot=docs/report-html.png "file://$html"
# Open the workbook on its Cases sheet (the third) in LibreOffice Calc on a virtual screen.
python3 - "$xlsx" "$out/cases-view.xlsx" <<'PY'
import re, sys, zipfile
src, dst = sys.argv[1:]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename == "xl/workbook.xml":
            text = data.decode()
            text = (re.sub(r'activeTab="\d+"', 'activeTab="2"', text) if "activeTab" in text
                    else text.replace("<workbookView ", '<workbookView activeTab="2" ', 1))
            data = text.encode()
        elif item.filename.startswith("xl/worksheets/sheet"):
            text = data.decode().replace(' tabSelected="1"', "")
            if item.filename.endswith("sheet3.xml"):
                text = text.replace("<sheetView ", '<sheetView tabSelected="1" ', 1)
            data = text.encode()
        zout.writestr(item, data)
PY
cat > "$out/shot.sh" <<SH
#!/usr/bin/env bash
export HOME="$out/home"; mkdir -p "\$HOME"
soffice --calc --norestore --nologo "$out/cases-view.xlsx" &
sleep 25
wid=\$(xdotool search --name cases-view | head -1)
[ -n "\$wid" ] && xdotool windowsize "\$wid" 1500 800 && xdotool windowmove "\$wid" 0 0
sleep 5
import -window root "$PWD/docs/report-xlsx.png"
kill %1
SH
chmod +x "$out/shot.sh"
xvfb-run -a -s "-screen 0 1500x820x24" "$out/shot.sh"
echo "wrote docs/report-html.png docs/report-xlsx.png"
