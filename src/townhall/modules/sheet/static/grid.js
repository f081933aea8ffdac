// The Sheets app's grid: a virtualized spreadsheet over the workbook's Yjs document.
//
//   import { mountSheetApp } from '/static/sheet/grid.js'
//   mountSheetApp(document.getElementById('sheet-grid'))   // data-workbook-id, data-can-edit, ...
//   // or, over a document you connected yourself:
//   const grid = mountGrid(container, { doc, awareness, readOnly })
//
// Only the rows and columns in view (plus an overscan) are in the DOM; headers are sticky grid
// items of the scrolled space, so they never lag the compositor. One hidden textarea keeps the
// keyboard focus (typing starts an edit, IME included; copy/paste events land on it), and turns
// into the visible cell editor while editing. Values come from formula.js's Workbook, rebuilt
// after each change (once per frame) and evaluated lazily, so only what is on screen and what it
// depends on is computed.

import { CellError, columnName, formatNumber, parseLiteral } from './formula.js'
import { Y } from '/static/vendor/collab-editor.min.js'
import { SheetDoc, a1, checkSheetName, moveFormula, parseA1 } from './sheet-doc.js'

export { SheetDoc }

const ROW_H = 24
const HEAD_H = 24
const ROWHEAD_W = 48
const COL_W = 100
const OVERSCAN_ROWS = 8
const OVERSCAN_COLS = 2
const SPILL_COLS = 6
const CLIP_TYPE = 'application/x-townhall-sheet'
const COLORS = [['', 'Auto'], ['#d93025', 'Red'], ['#e37400', 'Orange'], ['#188038', 'Green'], ['#1a73e8', 'Blue'],
  ['#9334e6', 'Purple'], ['#80868b', 'Grey']]

const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (name === 'class') el.className = value
    else if (name === 'text') el.textContent = value
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : value)
  }
  el.append(...children.filter((c) => c !== null && c !== undefined))
  return el
}

// ---- value display ----

const grouped = (dp) => new Intl.NumberFormat('en-US', { minimumFractionDigits: dp, maximumFractionDigits: dp })
const DAY_MS = 86400000
const EXCEL_EPOCH = Date.UTC(1899, 11, 30)

function general (number) {
  const abs = Math.abs(number)
  if (abs !== 0 && (abs >= 1e11 || abs < 1e-9)) return number.toExponential(5).toUpperCase().replace('E+', 'E+')
  return formatNumber(Number(number.toPrecision(10)))
}

/** The text and kind ("num" | "text" | "bool" | "err") a cell shows for its value and format. */
export function display (value, raw, format) {
  if (value instanceof CellError) return { text: value.code, kind: 'err' }
  if (typeof value === 'boolean') return { text: value ? 'TRUE' : 'FALSE', kind: 'bool' }
  if (value === null || value === undefined) return { text: '', kind: 'text' }
  if (typeof value === 'string') return { text: value, kind: 'text' }
  const fmt = format?.fmt
  const dp = Number.isInteger(format?.dp) ? Math.max(0, Math.min(10, format.dp)) : null
  if (fmt === 'number') return { text: grouped(dp ?? 2).format(value), kind: 'num' }
  if (fmt === 'percent') return { text: `${grouped(dp ?? 2).format(value * 100)}%`, kind: 'num' }
  if (fmt === 'currency') {
    const text = grouped(dp ?? 2).format(Math.abs(value))
    return { text: `${value < 0 ? '-' : ''}$${text}`, kind: 'num' }
  }
  if (fmt === 'date') {
    const date = new Date(EXCEL_EPOCH + Math.round(value * DAY_MS))
    return { text: Number.isFinite(date.getTime()) ? date.toISOString().slice(0, 10) : '#NUM!', kind: 'num' }
  }
  if (dp !== null) return { text: grouped(dp).format(value), kind: 'num' }
  // A typed number shows as typed ("50%", "1e3" stay); a computed one in general format.
  if (raw !== undefined && raw !== '' && !raw.startsWith('=')) return { text: raw.trim(), kind: 'num' }
  return { text: general(value), kind: 'num' }
}

// ---- TSV (what desktop spreadsheets put on the clipboard) ----

/** Rows of fields from TSV text; quoted fields may hold tabs, newlines and "" quotes. */
export function parseTsv (text) {
  const rows = []
  let row = []
  let field = ''
  let i = 0
  text = text.replace(/\r\n?/g, '\n')
  if (text.endsWith('\n')) text = text.slice(0, -1)
  while (i <= text.length) {
    if (field === '' && text[i] === '"') {
      let j = i + 1
      let value = ''
      for (;;) {
        const q = text.indexOf('"', j)
        if (q < 0) { value = null; break }
        value += text.slice(j, q)
        if (text[q + 1] === '"') { value += '"'; j = q + 2; continue }
        j = q + 1
        break
      }
      if (value !== null && (j >= text.length || text[j] === '\t' || text[j] === '\n')) {
        field = value
        i = j
      }
    }
    const ch = text[i]
    if (i === text.length || ch === '\n' || ch === '\t') {
      row.push(field)
      field = ''
      if (ch !== '\t') { rows.push(row); row = [] }
      i += 1
      continue
    }
    field += ch
    i += 1
  }
  return rows
}

export const toTsv = (rows) => rows.map((row) => row.map((v) => (/[\t\n"]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join('\t')).join('\n')

const escapeHtml = (text) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]))

// ---- the grid ----

class Grid {
  constructor (container, { doc, awareness = null, readOnly = false, createSheet = true, title = null }) {
    this.container = container
    this.title = title
    this.awareness = awareness
    this.readOnly = !!readOnly
    this.model = new SheetDoc(doc)
    this.sheetId = null
    this.sel = { r: 0, c: 0, r2: 0, c2: 0 } // active cell (r, c) and the other corner (r2, c2)
    this.editing = null // {mode: 'enter' | 'edit', from: 'cell' | 'bar', original}
    this.previewWidths = new Map()
    this.frame = 0
    this.dirty = { layout: true, data: true }
    this.cleanups = []
    this.build()
    if (createSheet && !readOnly && !this.model.sheets().length) this.model.ensureSheet()
    // Created after the default sheet, so undo never removes the sheet itself.
    this.undo = readOnly ? null : new Y.UndoManager(this.model.root, { trackedOrigins: new Set([this.model.origin]), captureTimeout: 400 })
    this.switchSheet(this.model.sheets()[0]?.id ?? null)
    this.cleanups.push(this.model.onChange((change) => this.changed(change)))
    if (awareness) {
      const onAwareness = () => this.schedule({ remote: true, people: true })
      awareness.on('change', onAwareness)
      this.cleanups.push(() => awareness.off('change', onAwareness))
    }
    const resize = new ResizeObserver(() => this.schedule({ layout: true }))
    resize.observe(this.scroller)
    this.cleanups.push(() => resize.disconnect())
    this.schedule({ layout: true, data: true, people: true })
  }

  // ---- DOM ----

  build () {
    const c = this.container
    c.classList.add('sg')
    c.classList.toggle('sg-readonly', this.readOnly)
    c.replaceChildren()
    const button = (id, label, title, extra = {}) => h('button', { type: 'button', class: 'sg-btn', 'data-action': id, title, 'aria-label': title, ...extra }, label)
    this.colorInput = h('select', { class: 'sg-select sg-color', title: 'Text colour', 'aria-label': 'Text colour', 'data-action': 'color' },
      ...COLORS.map(([color, label]) => h('option', { value: color, style: color ? `color:${color}` : null }, `A  ${label}`)))
    this.fmtSelect = h('select', { class: 'sg-select', title: 'Number format', 'aria-label': 'Number format', 'data-action': 'fmt' },
      h('option', { value: '' }, 'General'), h('option', { value: 'number' }, 'Number 1,000.12'),
      h('option', { value: 'percent' }, 'Percent 10.00%'), h('option', { value: 'currency' }, 'Currency $1,000.12'),
      h('option', { value: 'date' }, 'Date 2024-01-15'))
    const sep = () => h('span', { class: 'sg-sep' })
    this.status = h('span', { class: 'sg-status', hidden: true })
    this.people = h('span', { class: 'sg-people' })
    this.toolbar = h('div', { class: 'sg-toolbar', role: 'toolbar', 'aria-label': 'Sheet tools' },
      h('span', { class: 'sg-group' }, button('undo', '↶', 'Undo (Ctrl+Z)'), button('redo', '↷', 'Redo (Ctrl+Y)')), sep(),
      h('span', { class: 'sg-group' }, this.fmtSelect,
        button('dp-', '.0←', 'Fewer decimals'), button('dp+', '.00→', 'More decimals')), sep(),
      h('span', { class: 'sg-group' }, button('bold', 'B', 'Bold (Ctrl+B)', { class: 'sg-btn sg-b' }),
        button('italic', 'I', 'Italic (Ctrl+I)', { class: 'sg-btn sg-i' }), this.colorInput), sep(),
      h('span', { class: 'sg-group' }, button('row-above', '+Row', 'Insert row above'), button('row-delete', '−Row', 'Delete row(s)'),
        button('col-left', '+Col', 'Insert column left'), button('col-delete', '−Col', 'Delete column(s)')),
      h('span', { class: 'sg-spacer' }), this.people, this.status)
    this.nameBox = h('input', { class: 'sg-namebox', 'aria-label': 'Cell reference', spellcheck: 'false', autocomplete: 'off' })
    this.bar = h('input', { class: 'sg-bar', 'aria-label': 'Formula bar', spellcheck: 'false', autocomplete: 'off', readonly: this.readOnly })
    const formula = h('div', { class: 'sg-formula' }, this.nameBox, h('span', { class: 'sg-fx', 'aria-hidden': 'true' }, 'fx'), this.bar)
    this.corner = h('div', { class: 'sg-corner', title: 'Select all' })
    this.colHead = h('div', { class: 'sg-colhead' })
    this.rowHead = h('div', { class: 'sg-rowhead' })
    this.lines = h('div', { class: 'sg-lines' })
    this.rowsEl = h('div', { class: 'sg-rows' })
    this.selEl = h('div', { class: 'sg-sel', hidden: true })
    this.activeEl = h('div', { class: 'sg-active' })
    this.remoteEl = h('div', { class: 'sg-remotes' })
    this.editor = h('textarea', {
      class: 'sg-editor sg-idle', 'aria-label': 'Cell editor', spellcheck: 'false', autocomplete: 'off', wrap: 'off', rows: '1', readonly: this.readOnly
    })
    this.body = h('div', { class: 'sg-body' }, this.lines, this.rowsEl, this.selEl, this.remoteEl, this.activeEl, this.editor)
    this.space = h('div', { class: 'sg-space' }, this.corner, this.colHead, this.rowHead, this.body)
    this.scroller = h('div', { class: 'sg-scroller' }, this.space)
    this.tabs = h('div', { class: 'sg-tabs', role: 'tablist', 'aria-label': 'Sheets' })
    this.menu = h('div', { class: 'sg-menu', role: 'menu', hidden: true })
    if (this.title) {
      // The page's own header: workbook name, who is here, connection state.
      this.header = h('div', { class: 'sg-header' },
        h('span', { class: 'sg-logo', 'aria-hidden': 'true' }), h('h1', { class: 'sg-name' }, this.title),
        this.readOnly ? h('span', { class: 'sg-viewonly' }, 'View only') : null, h('span', { class: 'sg-spacer' }), this.people, this.status)
      c.append(this.header)
    }
    c.append(this.toolbar, formula, this.scroller, this.tabs, this.menu)
    if (this.readOnly) for (const el of this.toolbar.querySelectorAll('button, select')) el.disabled = true
    this.wire()
  }

  on (el, type, fn, opts) {
    el.addEventListener(type, fn, opts)
    this.cleanups.push(() => el.removeEventListener(type, fn, opts))
  }

  wire () {
    this.on(this.scroller, 'scroll', () => this.schedule({}), { passive: true })
    this.on(this.toolbar, 'mousedown', (e) => { if (e.target.closest('button')) e.preventDefault() })
    this.on(this.toolbar, 'click', (e) => {
      const btn = e.target.closest('button[data-action]')
      if (btn && !btn.disabled) this.action(btn.dataset.action)
    })
    this.on(this.fmtSelect, 'change', () => { this.applyFormat({ fmt: this.fmtSelect.value || null }); this.focus() })
    this.on(this.colorInput, 'change', () => { this.applyFormat({ color: this.colorInput.value || null }); this.focus() })
    this.on(this.body, 'pointerdown', (e) => this.pointerDown(e))
    this.on(this.body, 'dblclick', (e) => {
      if (e.target === this.editor) return
      this.beginEdit('edit')
    })
    this.on(this.body, 'contextmenu', (e) => this.openMenu(e, 'cell'))
    this.on(this.colHead, 'contextmenu', (e) => this.openMenu(e, 'col'))
    this.on(this.rowHead, 'contextmenu', (e) => this.openMenu(e, 'row'))
    this.on(this.colHead, 'pointerdown', (e) => this.headerDown(e, 'col'))
    this.on(this.rowHead, 'pointerdown', (e) => this.headerDown(e, 'row'))
    this.on(this.corner, 'click', () => { this.select(0, 0, this.rowCount() - 1, this.colCount() - 1, false); this.focus() })
    this.on(this.editor, 'keydown', (e) => this.keyDown(e))
    this.on(this.editor, 'input', () => {
      if (!this.editing) this.beginEdit('enter', { keep: true })
      this.bar.value = this.editor.value
      this.fitEditor()
    })
    this.on(this.editor, 'copy', (e) => this.copy(e, false))
    this.on(this.editor, 'cut', (e) => this.copy(e, true))
    this.on(this.editor, 'paste', (e) => this.paste(e))
    this.on(this.bar, 'focus', () => { if (!this.readOnly && !this.editing) this.beginEdit('edit', { from: 'bar' }) })
    this.on(this.bar, 'input', () => {
      if (!this.editing) this.beginEdit('edit', { from: 'bar' })
      this.editor.value = this.bar.value
    })
    this.on(this.bar, 'keydown', (e) => this.keyDown(e))
    this.on(this.nameBox, 'keydown', (e) => {
      if (e.key !== 'Enter') return
      e.preventDefault()
      const [from, to] = this.nameBox.value.split(':').map(parseA1)
      if (from) this.select(from.row, from.col, to?.row ?? from.row, to?.col ?? from.col)
      this.focus()
    })
    this.on(document, 'pointerdown', (e) => { if (!this.menu.hidden && !this.menu.contains(e.target)) this.closeMenu() })
    this.on(this.menu, 'click', (e) => {
      const item = e.target.closest('[data-action]')
      if (!item) return
      this.closeMenu()
      this.action(item.dataset.action)
    })
  }

  destroy () {
    cancelAnimationFrame(this.frame)
    clearTimeout(this.remoteTimer)
    for (const fn of this.cleanups.splice(0)) fn()
    this.model.destroy()
    this.undo?.destroy()
    this.container.replaceChildren()
  }

  focus () {
    if (!this.editing && this.lastPointer === 'touch') this.editor.setAttribute('inputmode', 'none')
    this.editor.focus({ preventScroll: true })
  }

  // ---- layout ----

  rowIds () { return this.sheetId ? this.model.rowIds(this.sheetId) : [] }
  colIds () { return this.sheetId ? this.model.colIds(this.sheetId) : [] }
  rowCount () { return this.rowIds().length }
  colCount () { return this.colIds().length }

  layout () {
    const cols = this.colIds()
    const x = new Float64Array(cols.length + 1)
    for (let i = 0; i < cols.length; i += 1) {
      const w = this.previewWidths.get(cols[i]) ?? (this.sheetId && this.model.width(this.sheetId, cols[i])) ?? COL_W
      x[i + 1] = x[i] + w
    }
    this.colX = x
    const oldRows = this.rowList
    const oldCols = this.colList
    this.rowList = this.rowIds()
    this.colList = cols
    this.rowIndex = new Map(this.rowList.map((id, n) => [id, n]))
    this.colIndex = new Map(cols.map((id, n) => [id, n]))
    // The selection stays on its cells when rows or columns move under it (a remote insert).
    if (oldRows && oldCols && (oldRows !== this.rowList || oldCols !== cols)) {
      const follow = (list, index, n) => index.get(list[n]) ?? n
      const { r, c, r2, c2 } = this.sel
      this.sel = {
        r: follow(oldRows, this.rowIndex, r), c: follow(oldCols, this.colIndex, c),
        r2: follow(oldRows, this.rowIndex, r2), c2: follow(oldCols, this.colIndex, c2)
      }
    }
    const width = x[cols.length]
    const height = this.rowCount() * ROW_H
    this.space.style.gridTemplateColumns = `${ROWHEAD_W}px ${width}px`
    this.space.style.gridTemplateRows = `${HEAD_H}px ${height}px`
    this.clampSelection()
  }

  colAt (px) {
    const x = this.colX
    let lo = 0
    let hi = x.length - 2
    if (hi < 0) return 0
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (x[mid] <= px) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  rect (r, c, r2 = r, c2 = c) {
    const [top, bottom] = [Math.min(r, r2), Math.max(r, r2)]
    const [left, right] = [Math.min(c, c2), Math.max(c, c2)]
    return { x: this.colX[left], y: top * ROW_H, w: this.colX[right + 1] - this.colX[left], h: (bottom - top + 1) * ROW_H }
  }

  range () {
    const { r, c, r2, c2 } = this.sel
    return { top: Math.min(r, r2), left: Math.min(c, c2), bottom: Math.max(r, r2), right: Math.max(c, c2) }
  }

  clampSelection () {
    const maxR = Math.max(0, this.rowCount() - 1)
    const maxC = Math.max(0, this.colCount() - 1)
    const s = this.sel
    this.sel = { r: Math.min(s.r, maxR), c: Math.min(s.c, maxC), r2: Math.min(s.r2, maxR), c2: Math.min(s.c2, maxC) }
  }

  // ---- change handling, once per frame ----

  schedule (what) {
    for (const [key, value] of Object.entries(what)) if (value) this.dirty[key] = true
    this.dirty.view = true
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render() })
  }

  /** Render now (tests and callers that need the DOM current synchronously). */
  flush () {
    cancelAnimationFrame(this.frame)
    this.frame = 0
    this.render()
  }

  changed ({ sheets, structure }) {
    if (this.sheetId && !this.model.sheet(this.sheetId)) {
      this.switchSheet(this.model.sheets()[0]?.id ?? null)
      return
    }
    if (!this.sheetId && this.model.sheets().length) {
      this.switchSheet(this.model.sheets()[0].id)
      return
    }
    this.schedule({ data: true, layout: structure || sheets.has(this.sheetId), tabs: structure })
  }

  switchSheet (sheetId) {
    if (this.editing) this.commitEdit()
    this.sheetId = sheetId
    this.sel = { r: 0, c: 0, r2: 0, c2: 0 }
    this.rowList = this.colList = null
    this.previewWidths.clear()
    this.scroller.scrollTop = 0
    this.scroller.scrollLeft = 0
    this.schedule({ layout: true, data: true, tabs: true, remote: true })
    this.announce()
  }

  render () {
    const d = this.dirty
    this.dirty = {}
    if (d.layout) this.layout()
    if (d.tabs) this.renderTabs()
    if (d.people) this.renderPeople()
    this.renderWindow(!!(d.layout || d.data))
    this.renderSelection()
    this.renderRemotes()
    if (!this.editing) this.syncBar()
    this.container.dataset.sheet = this.sheetId ? this.model.name(this.sheetId) : ''
  }

  renderWindow (force = true) {
    const rows = this.rowIds()
    const cols = this.colIds()
    if (!this.sheetId) {
      this.rowsEl.replaceChildren(h('div', { class: 'sg-empty' }, 'Loading sheet…'))
      return
    }
    const top = this.scroller.scrollTop
    const left = this.scroller.scrollLeft
    const viewH = Math.max(ROW_H, this.scroller.clientHeight - HEAD_H)
    const viewW = Math.max(COL_W, this.scroller.clientWidth - ROWHEAD_W)
    // Rows are rendered in blocks, so most scroll frames keep the same window and touch no DOM.
    const r0 = Math.max(0, Math.floor(top / ROW_H / OVERSCAN_ROWS) * OVERSCAN_ROWS - OVERSCAN_ROWS)
    const r1 = Math.min(rows.length - 1, Math.ceil((top + viewH) / ROW_H / OVERSCAN_ROWS) * OVERSCAN_ROWS + OVERSCAN_ROWS)
    const c0 = Math.max(0, this.colAt(left) - OVERSCAN_COLS)
    const c1 = Math.min(cols.length - 1, this.colAt(left + viewW) + OVERSCAN_COLS)
    const { top: sTop, left: sLeft, bottom: sBottom, right: sRight } = this.range()
    const windowKey = [r0, r1, c0, c1, sTop, sLeft, sBottom, sRight].join()
    if (!force && windowKey === this.windowKey) return
    this.windowKey = windowKey
    this.window = { r0, r1, c0, c1 }

    // One HTML string per layer: far cheaper than creating each node (this runs per window move).
    const x = this.colX
    let heads = ''
    for (let c = c0; c <= c1; c += 1) {
      const sel = c >= sLeft && c <= sRight ? ' sg-hsel' : ''
      const handle = this.readOnly ? '' : `<span class="sg-resize" data-col="${c}"></span>`
      heads += `<div class="sg-ch${sel}" data-col="${c}" style="left:${x[c]}px;width:${x[c + 1] - x[c]}px">${columnName(c)}${handle}</div>`
    }
    this.colHead.innerHTML = heads
    let rowHeads = ''
    let lines = ''
    let body = ''
    const spanH = (r1 - r0 + 1) * ROW_H
    for (let c = c0; c <= c1; c += 1) lines += `<div class="sg-vline" style="left:${x[c + 1] - 1}px;top:${r0 * ROW_H}px;height:${spanH}px"></div>`
    const cells = this.model.cellsMap(this.sheetId)
    const formats = this.model.sheet(this.sheetId).get('formats')
    const anyFormat = formats && formats.size > 0
    const name = this.model.name(this.sheetId)
    const book = this.model.workbook()
    for (let r = r0; r <= r1; r += 1) {
      const sel = r >= sTop && r <= sBottom ? ' sg-hsel' : ''
      rowHeads += `<div class="sg-rh${sel}" data-row="${r}" style="top:${r * ROW_H}px">${r + 1}</div>`
      const rowId = rows[r]
      body += `<div class="sg-row" style="top:${r * ROW_H}px">`
      for (let c = Math.max(0, c0 - SPILL_COLS); c <= c1; c += 1) {
        const key = `${rowId}:${cols[c]}`
        const raw = cells?.get(key)
        const format = anyFormat ? formats.get(key) || null : null
        if ((raw === undefined || raw === '') && !format) continue
        const value = raw === undefined || raw === '' ? null : raw.startsWith('=') ? book.value(name, r, c) : parseLiteral(raw)
        const shown = display(value, raw, format)
        if (!shown.text && c < c0) continue
        // Left-aligned text spills over the empty cells to its right, as in a spreadsheet.
        let end = c
        if (shown.kind === 'text' && shown.text) {
          while (end + 1 < cols.length && end - c < SPILL_COLS && !cells?.get(`${rowId}:${cols[end + 1]}`)) end += 1
          const needed = shown.text.length * 7.5 + 8
          let width = x[c + 1] - x[c]
          let stop = c
          while (stop < end && width < needed) { stop += 1; width += x[stop + 1] - x[stop] }
          end = stop
        }
        if (end < c0) continue
        let style = `left:${x[c]}px;width:${x[end + 1] - x[c] - 1}px`
        if (format?.color && /^#[0-9a-fA-F]{6}$/.test(format.color)) style += `;color:${format.color}`
        const cls = `sg-c sg-${shown.kind}${format?.b ? ' sg-bold' : ''}${format?.i ? ' sg-ital' : ''}${end > c ? ' sg-spill' : ''}`
        const title = shown.kind === 'err' ? ` title="${escapeHtml(errorHelp(shown.text))}"` : ''
        body += `<div class="${cls}" style="${style}" data-cell="${a1(r, c)}"${title}>${escapeHtml(shown.text)}</div>`
      }
      body += '</div>'
    }
    this.rowHead.innerHTML = rowHeads
    this.lines.innerHTML = lines
    this.rowsEl.innerHTML = body
  }

  renderSelection () {
    if (!this.colX || !this.rowCount()) return
    const { r, c, r2, c2 } = this.sel
    const box = this.rect(r, c, r2, c2)
    const multi = r !== r2 || c !== c2
    this.selEl.hidden = !multi
    if (multi) Object.assign(this.selEl.style, { left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px` })
    const cell = this.rect(r, c)
    Object.assign(this.activeEl.style, { left: `${cell.x}px`, top: `${cell.y}px`, width: `${cell.w}px`, height: `${cell.h}px` })
    this.nameBox.value = multi ? `${a1(Math.min(r, r2), Math.min(c, c2))}:${a1(Math.max(r, r2), Math.max(c, c2))}` : a1(r, c)
    if (!this.editing) {
      Object.assign(this.editor.style, { left: `${cell.x}px`, top: `${cell.y}px`, width: `${cell.w}px`, height: `${cell.h}px` })
    }
    this.syncToolbar()
  }

  renderRemotes () {
    const out = []
    const now = Date.now()
    if (!this.remoteSeen) this.remoteSeen = new Map()
    if (this.awareness && this.sheetId && this.colX) {
      for (const [clientId, state] of this.awareness.getStates()) {
        if (clientId === this.awareness.clientID || !state?.cell || state.cell.sheet !== this.sheetId) continue
        // A name shows while its cursor moves, then fades so it does not hide cells for long.
        const where = `${state.cell.sheet}:${state.cell.row}:${state.cell.col}`
        const seen = this.remoteSeen.get(clientId)
        if (!seen || seen.where !== where) {
          this.remoteSeen.set(clientId, { where, at: now })
          clearTimeout(this.remoteTimer)
          this.remoteTimer = setTimeout(() => this.schedule({ remote: true }), 3100)
        }
        const fresh = now - this.remoteSeen.get(clientId).at < 3000
        const r = this.rowIndex.get(state.cell.row)
        const c = this.colIndex.get(state.cell.col)
        if (r === undefined || c === undefined) continue
        const color = /^#[0-9a-fA-F]{6}$/.test(state.user?.color || '') ? state.user.color : '#7c3aed'
        const box = this.rect(r, c)
        out.push(h('div', {
          class: `sg-remote${fresh ? ' sg-fresh' : ''}`, style: `left:${box.x}px;top:${box.y}px;width:${box.w}px;height:${box.h}px;border-color:${color}`, 'data-client': clientId
        }, h('span', { class: 'sg-remote-name', style: `background:${color}` }, String(state.user?.name || 'Someone'))))
      }
    }
    this.remoteEl.replaceChildren(...out)
  }

  renderPeople () {
    if (!this.awareness) return
    const people = []
    for (const [clientId, state] of this.awareness.getStates()) {
      if (!state?.user) continue
      const name = String(state.user.name || 'Someone')
      const color = /^#[0-9a-fA-F]{6}$/.test(state.user.color || '') ? state.user.color : '#667085'
      const me = clientId === this.awareness.clientID
      people.push(h('span', { class: 'sg-person', style: `background:${color}`, title: me ? `${name} (you)` : name, 'data-name': name },
        name.trim().slice(0, 1).toUpperCase() || '?'))
    }
    this.people.replaceChildren(...people.slice(0, 8))
    this.people.title = `${people.length} here`
  }

  renderTabs () {
    const sheets = this.model.sheets()
    const signature = JSON.stringify([this.readOnly, sheets.map((s) => [s.id, s.name])])
    if (signature === this.tabSignature) {
      // Same tabs: only the selection moves (rebuilding would swallow a double-click).
      for (const tab of this.tabs.querySelectorAll('.sg-tab')) tab.setAttribute('aria-selected', String(tab.dataset.sheet === this.sheetId))
      return
    }
    this.tabSignature = signature
    const tabs = sheets.map((s) => {
      const tab = h('button', {
        type: 'button', class: 'sg-tab', role: 'tab', 'aria-selected': String(s.id === this.sheetId), 'data-sheet': s.id, title: this.readOnly ? s.name : `${s.name} (double-click to rename)`
      }, s.name)
      tab.addEventListener('click', () => { if (s.id !== this.sheetId) this.switchSheet(s.id); this.focus() })
      tab.addEventListener('dblclick', () => this.renameTab(tab, s.id))
      return tab
    })
    const add = h('button', { type: 'button', class: 'sg-tab-add', title: 'Add sheet', 'aria-label': 'Add sheet', disabled: this.readOnly }, '+')
    add.addEventListener('click', () => this.addSheet())
    this.tabs.replaceChildren(add, ...tabs)
  }

  renameTab (tab, sheetId) {
    if (this.readOnly) return
    const input = h('input', { class: 'sg-tab-input', value: this.model.name(sheetId), 'aria-label': 'Sheet name' })
    tab.replaceWith(input)
    input.select()
    let done = false
    const finish = (save) => {
      if (done) return
      done = true
      if (save) {
        try {
          this.model.renameSheet(sheetId, input.value)
        } catch (err) {
          this.flash(err.message)
        }
      }
      this.tabSignature = null
      this.schedule({ tabs: true })
      this.focus()
    }
    input.addEventListener('keydown', (e) => {
      // preventDefault: the key would otherwise land in the grid's textarea once it has focus.
      if (e.key === 'Enter') { e.preventDefault(); finish(true) }
      if (e.key === 'Escape') { e.preventDefault(); finish(false) }
    })
    input.addEventListener('blur', () => finish(true))
  }

  addSheet () {
    if (this.readOnly) return null
    const id = this.model.createSheet(this.model.nextSheetName())
    this.switchSheet(id)
    this.focus()
    return id
  }

  flash (text) {
    const note = h('div', { class: 'sg-toast', role: 'status' }, text)
    this.container.append(note)
    setTimeout(() => note.remove(), 3000)
  }

  syncBar () {
    if (!this.sheetId) return
    const raw = this.model.rawAt(this.sheetId, this.sel.r, this.sel.c)
    if (document.activeElement !== this.bar) this.bar.value = raw
  }

  syncToolbar () {
    if (!this.sheetId) return
    const rowId = this.rowIds()[this.sel.r]
    const colId = this.colIds()[this.sel.c]
    const format = rowId && colId ? this.model.format(this.sheetId, rowId, colId) || {} : {}
    this.toolbar.querySelector('[data-action=bold]').setAttribute('aria-pressed', String(!!format.b))
    this.toolbar.querySelector('[data-action=italic]').setAttribute('aria-pressed', String(!!format.i))
    this.fmtSelect.value = format.fmt || ''
    this.colorInput.value = COLORS.some(([color]) => color && color === format.color) ? format.color : ''
    this.colorInput.style.color = format.color || ''
  }

  // ---- selection ----

  select (r, c, r2 = r, c2 = c, reveal = true) {
    const maxR = this.rowCount() - 1
    const maxC = this.colCount() - 1
    const clamp = (v, max) => Math.max(0, Math.min(v, max))
    this.sel = { r: clamp(r, maxR), c: clamp(c, maxC), r2: clamp(r2, maxR), c2: clamp(c2, maxC) }
    if (reveal) this.reveal(this.sel.r2, this.sel.c2)
    this.announce()
    this.schedule({})
    this.flush()
  }

  reveal (r, c) {
    const s = this.scroller
    const box = this.rect(r, c)
    const viewH = s.clientHeight - HEAD_H
    const viewW = s.clientWidth - ROWHEAD_W
    if (box.y < s.scrollTop) s.scrollTop = box.y
    else if (box.y + box.h > s.scrollTop + viewH) s.scrollTop = box.y + box.h - viewH
    if (box.x < s.scrollLeft) s.scrollLeft = box.x
    else if (box.x + box.w > s.scrollLeft + viewW) s.scrollLeft = Math.min(box.x, box.x + box.w - viewW)
  }

  announce () {
    if (!this.awareness || !this.sheetId) return
    const row = this.rowIds()[this.sel.r]
    const col = this.colIds()[this.sel.c]
    this.awareness.setLocalStateField('cell', row && col ? { sheet: this.sheetId, row, col } : null)
  }

  cellFromEvent (e) {
    const box = this.body.getBoundingClientRect()
    const x = e.clientX - box.left
    const y = e.clientY - box.top
    return { r: Math.max(0, Math.min(this.rowCount() - 1, Math.floor(y / ROW_H))), c: this.colAt(Math.max(0, x)) }
  }

  pointerDown (e) {
    this.lastPointer = e.pointerType
    if (e.target === this.editor && this.editing) return
    if (e.button === 2) {
      const { r, c } = this.cellFromEvent(e)
      const { top, left, bottom, right } = this.range()
      if (r < top || r > bottom || c < left || c > right) this.select(r, c, r, c, false)
      return
    }
    if (e.button !== 0) return
    const { r, c } = this.cellFromEvent(e)
    if (e.pointerType === 'touch') {
      // Touch scrolls; a tap (no movement) selects, and a tap on the active cell edits.
      const start = { x: e.clientX, y: e.clientY }
      const up = (u) => {
        this.body.removeEventListener('pointerup', up)
        if (Math.hypot(u.clientX - start.x, u.clientY - start.y) > 8) return
        if (this.editing) this.commitEdit()
        if (!this.readOnly && r === this.sel.r && c === this.sel.c && r === this.sel.r2 && c === this.sel.c2) this.beginEdit('edit')
        else { this.select(r, c, r, c, false); this.focus() }
      }
      this.body.addEventListener('pointerup', up)
      return
    }
    e.preventDefault()
    if (this.pointing(r, c)) return
    if (this.editing) this.commitEdit()
    if (e.shiftKey) this.select(this.sel.r, this.sel.c, r, c, false)
    else this.select(r, c, r, c, false)
    this.focus()
    const move = (m) => {
      const cell = this.cellFromEvent(m)
      if (cell.r !== this.sel.r2 || cell.c !== this.sel.c2) this.select(this.sel.r, this.sel.c, cell.r, cell.c, true)
    }
    const up = () => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
  }

  /** While typing a formula, a click (or drag) on a cell types its reference, as in Excel. */
  pointing (r, c) {
    const ed = this.editing
    if (!ed || ed.from !== 'cell' || !this.editor.value.startsWith('=')) return false
    const el = this.editor
    const point = ed.point && el.selectionStart === ed.point.end ? ed.point : null
    const before = el.value.slice(0, point ? point.start : el.selectionStart)
    if (!point && !/[=(,+\-*/^&<>:]\s*$/.test(before)) return false
    const start = point ? point.start : el.selectionStart
    const put = (r2, c2) => {
      const text = r2 === r && c2 === c ? a1(r, c) : `${a1(Math.min(r, r2), Math.min(c, c2))}:${a1(Math.max(r, r2), Math.max(c, c2))}`
      const end = ed.point && ed.point.start === start ? ed.point.end : (point ? point.end : el.selectionEnd)
      el.setRangeText(text, start, end, 'end')
      ed.point = { start, end: start + text.length }
      this.bar.value = el.value
      this.fitEditor()
    }
    ed.point = null
    put(r, c)
    const move = (m) => {
      const cell = this.cellFromEvent(m)
      put(cell.r, cell.c)
    }
    const up = () => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
      el.focus({ preventScroll: true })
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
    return true
  }

  headerDown (e, axis) {
    if (e.button !== 0) return
    const handle = e.target.closest('.sg-resize')
    if (handle) return this.resizeStart(e, Number(handle.dataset.col))
    const head = e.target.closest(axis === 'col' ? '.sg-ch' : '.sg-rh')
    if (!head) return
    e.preventDefault()
    if (this.editing) this.commitEdit()
    const index = Number(head.dataset[axis])
    const lastR = this.rowCount() - 1
    const lastC = this.colCount() - 1
    const pick = (from, to) => {
      if (axis === 'col') { this.sel = { r: 0, c: from, r2: lastR, c2: to } } else { this.sel = { r: from, c: 0, r2: to, c2: lastC } }
      this.announce()
      this.schedule({})
    }
    const anchor = e.shiftKey ? (axis === 'col' ? this.sel.c : this.sel.r) : index
    pick(anchor, index)
    this.focus()
  }

  resizeStart (e, col) {
    e.preventDefault()
    e.stopPropagation()
    const colId = this.colIds()[col]
    const startX = e.clientX
    const startW = this.colX[col + 1] - this.colX[col]
    const { left, right, top, bottom } = this.range()
    // Resizing one of several fully selected columns resizes them all.
    const whole = top === 0 && bottom === this.rowCount() - 1 && col >= left && col <= right
    const ids = whole ? this.colIds().slice(left, right + 1) : [colId]
    const move = (m) => {
      const w = Math.max(20, startW + m.clientX - startX)
      for (const id of ids) this.previewWidths.set(id, w)
      this.schedule({ layout: true })
    }
    const up = (u) => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
      const w = Math.max(20, startW + u.clientX - startX)
      this.previewWidths.clear()
      this.model.setWidth(this.sheetId, ids, w)
      this.schedule({ layout: true })
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
  }

  // ---- keyboard ----

  keyDown (e) {
    const mod = e.ctrlKey || e.metaKey
    if (e.isComposing || e.keyCode === 229) return
    if (this.editing) return this.editingKey(e)
    if (e.target === this.bar) return
    const { r, c, r2, c2 } = this.sel
    const rows = this.rowCount()
    const cols = this.colCount()
    const page = Math.max(1, Math.floor((this.scroller.clientHeight - HEAD_H) / ROW_H) - 1)
    const moves = {
      ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageUp: [-page, 0], PageDown: [page, 0]
    }
    if (moves[e.key]) {
      e.preventDefault()
      let [dr, dc] = moves[e.key]
      if (mod && e.key.startsWith('Arrow')) { dr *= rows; dc *= cols }
      if (e.shiftKey) this.select(r, c, r2 + dr, c2 + dc)
      else this.select(r + dr, c + dc)
      return
    }
    if (e.key === 'Home') {
      e.preventDefault()
      return mod ? this.select(0, 0) : this.select(r, 0)
    }
    if (e.key === 'End' && mod) {
      e.preventDefault()
      return this.select(rows - 1, cols - 1)
    }
    if (e.key === 'Tab' || e.key === 'Enter') {
      e.preventDefault()
      const back = e.shiftKey
      if (e.key === 'Tab') this.select(r, c + (back ? -1 : 1))
      else this.select(r + (back ? -1 : 1), c)
      return
    }
    if (mod && e.key.toLowerCase() === 'a') { e.preventDefault(); return this.select(0, 0, rows - 1, cols - 1, false) }
    if (this.readOnly) return
    if (mod && !e.shiftKey && e.key.toLowerCase() === 'z') { e.preventDefault(); return this.action('undo') }
    if (mod && (e.key.toLowerCase() === 'y' || (e.shiftKey && e.key.toLowerCase() === 'z'))) { e.preventDefault(); return this.action('redo') }
    if (mod && e.key.toLowerCase() === 'b') { e.preventDefault(); return this.action('bold') }
    if (mod && e.key.toLowerCase() === 'i') { e.preventDefault(); return this.action('italic') }
    if (e.key === 'Delete' || e.key === 'Backspace') {
      e.preventDefault()
      const { top, left, bottom, right } = this.range()
      this.model.clearRange(this.sheetId, top, left, bottom, right)
      return
    }
    if (e.key === 'F2') { e.preventDefault(); return this.beginEdit('edit') }
    // Printable keys fall through to the textarea: its `input` event starts the edit.
  }

  editingKey (e) {
    const fromBar = this.editing.from === 'bar'
    if (e.key === 'Escape') { e.preventDefault(); return this.cancelEdit() }
    if (e.key === 'Enter' && !e.altKey) {
      e.preventDefault()
      this.commitEdit()
      return this.select(this.sel.r + (e.shiftKey ? -1 : 1), this.sel.c)
    }
    if (e.key === 'Tab') {
      e.preventDefault()
      this.commitEdit()
      return this.select(this.sel.r, this.sel.c + (e.shiftKey ? -1 : 1))
    }
    if (e.key === 'Enter' && e.altKey && !fromBar) {
      e.preventDefault()
      const el = this.editor
      el.setRangeText('\n', el.selectionStart, el.selectionEnd, 'end')
      this.bar.value = el.value
      return
    }
    const arrows = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }
    if (this.editing.mode === 'enter' && arrows[e.key] && !e.shiftKey) {
      e.preventDefault()
      this.commitEdit()
      const [dr, dc] = arrows[e.key]
      return this.select(this.sel.r + dr, this.sel.c + dc)
    }
  }

  // ---- editing ----

  beginEdit (mode, { keep = false, from = 'cell' } = {}) {
    if (this.readOnly || !this.sheetId || this.editing) return
    const raw = this.model.rawAt(this.sheetId, this.sel.r, this.sel.c)
    // The edit belongs to the cell's ids: a row inserted meanwhile does not redirect it.
    this.editing = { mode, from, original: raw, rowId: this.rowIds()[this.sel.r], colId: this.colIds()[this.sel.c] }
    this.sel = { ...this.sel, r2: this.sel.r, c2: this.sel.c }
    this.reveal(this.sel.r, this.sel.c)
    this.flush()
    if (!keep) this.editor.value = raw
    this.bar.value = this.editor.value
    this.editor.classList.remove('sg-idle')
    if (this.editor.getAttribute('inputmode') === 'none') {
      // A touch tap focused the editor without a keyboard: re-focus so the keyboard opens.
      this.editor.setAttribute('inputmode', 'text')
      this.editor.blur()
    }
    this.container.classList.add('sg-editing')
    this.fitEditor()
    if (from === 'cell') {
      this.editor.focus({ preventScroll: true })
      const end = this.editor.value.length
      this.editor.setSelectionRange(end, end)
    }
  }

  fitEditor () {
    if (!this.editing) return
    const cell = this.rect(this.sel.r, this.sel.c)
    const lines = this.editor.value.split('\n')
    const longest = lines.reduce((m, l) => Math.max(m, l.length), 0)
    this.editor.style.width = `${Math.max(cell.w, Math.min(600, longest * 7.6 + 16))}px`
    this.editor.style.height = `${Math.max(cell.h, lines.length * 18 + 6)}px`
  }

  endEdit () {
    this.editing = null
    this.editor.value = ''
    this.editor.classList.add('sg-idle')
    this.container.classList.remove('sg-editing')
    this.schedule({})
    this.flush()
    this.focus()
  }

  commitEdit () {
    if (!this.editing) return
    const text = this.editing.from === 'bar' ? this.bar.value : this.editor.value
    const { rowId, colId } = this.editing
    if (text !== this.editing.original && this.model.sheet(this.sheetId)?.get('rows').has(rowId)) {
      this.model.setRaw(this.sheetId, rowId, colId, text)
    }
    this.endEdit()
  }

  cancelEdit () {
    if (!this.editing) return
    this.endEdit()
  }

  /** Type `text` into the active cell as a user would (tests, scripts). */
  setActive (text) {
    this.model.setCell(this.sheetId, this.sel.r, this.sel.c, text)
  }

  // ---- commands ----

  applyFormat (patch) {
    if (this.readOnly || !this.sheetId) return
    const { top, left, bottom, right } = this.range()
    this.model.setFormat(this.sheetId, top, left, bottom, right, patch)
  }

  activeFormat () {
    return this.model.format(this.sheetId, this.rowIds()[this.sel.r], this.colIds()[this.sel.c]) || {}
  }

  action (name) {
    if (this.readOnly || !this.sheetId) return
    if (this.editing) this.commitEdit()
    const { top, left, bottom, right } = this.range()
    const format = this.activeFormat()
    const height = bottom - top + 1
    const width = right - left + 1
    switch (name) {
      case 'undo': this.undo?.undo(); break
      case 'redo': this.undo?.redo(); break
      case 'bold': this.applyFormat({ b: !format.b }); break
      case 'italic': this.applyFormat({ i: !format.i }); break
      case 'dp+':
      case 'dp-': {
        const value = this.model.value(this.sheetId, this.sel.r, this.sel.c)
        const raw = this.model.rawAt(this.sheetId, this.sel.r, this.sel.c)
        const now = Number.isInteger(format.dp) ? format.dp : guessDecimals(value, raw, format.fmt)
        this.applyFormat({ dp: Math.max(0, Math.min(10, now + (name === 'dp+' ? 1 : -1))), fmt: format.fmt || 'number' })
        break
      }
      case 'row-above': this.model.insert(this.sheetId, 'rows', top, height); break
      case 'row-below': this.model.insert(this.sheetId, 'rows', bottom + 1, height); break
      case 'row-delete': this.model.remove(this.sheetId, 'rows', top, height); break
      case 'col-left': this.model.insert(this.sheetId, 'cols', left, width); break
      case 'col-right': this.model.insert(this.sheetId, 'cols', right + 1, width); break
      case 'col-delete': this.model.remove(this.sheetId, 'cols', left, width); break
      case 'clear': this.model.clearRange(this.sheetId, top, left, bottom, right); break
      case 'clear-format': this.applyFormat({ b: null, i: null, color: null, fmt: null, dp: null }); break
      default: return
    }
    this.schedule({ layout: true, data: true })
    this.focus()
  }

  openMenu (e, where) {
    e.preventDefault()
    if (this.readOnly) return
    if (where !== 'cell') {
      const head = e.target.closest(where === 'col' ? '.sg-ch' : '.sg-rh')
      if (head) {
        const index = Number(head.dataset[where])
        const { top, left, bottom, right } = this.range()
        const inside = where === 'col' ? index >= left && index <= right : index >= top && index <= bottom
        if (!inside) {
          this.sel = where === 'col' ? { r: 0, c: index, r2: this.rowCount() - 1, c2: index } : { r: index, c: 0, r2: index, c2: this.colCount() - 1 }
          this.schedule({})
        }
      }
    }
    const { top, left, bottom, right } = this.range()
    const nr = bottom - top + 1
    const nc = right - left + 1
    const item = (action, label, key = '') => h('button', { type: 'button', class: 'sg-menu-item', role: 'menuitem', 'data-action': action }, h('span', {}, label), h('kbd', {}, key))
    const rows = nr > 1 ? `${nr} rows` : 'row'
    const cols = nc > 1 ? `${nc} columns` : 'column'
    this.menu.replaceChildren(
      item('row-above', `Insert ${rows} above`), item('row-below', `Insert ${rows} below`),
      item('col-left', `Insert ${cols} left`), item('col-right', `Insert ${cols} right`),
      h('hr'),
      item('row-delete', `Delete ${rows}`), item('col-delete', `Delete ${cols}`),
      h('hr'),
      item('clear', 'Clear contents', 'Del'), item('clear-format', 'Clear formatting')
    )
    this.menu.hidden = false
    const box = this.container.getBoundingClientRect()
    const mw = 230
    const x = Math.min(e.clientX - box.left, box.width - mw - 4)
    this.menu.style.left = `${Math.max(4, x)}px`
    this.menu.style.top = `${e.clientY - box.top}px`
  }

  closeMenu () {
    this.menu.hidden = true
  }

  // ---- clipboard ----

  copy (e, cut) {
    if (this.editing) return
    e.preventDefault()
    const { top, left, bottom, right } = this.range()
    const raws = []
    const texts = []
    const name = this.model.name(this.sheetId)
    const book = this.model.workbook()
    for (let r = top; r <= bottom; r += 1) {
      const rawRow = []
      const textRow = []
      for (let c = left; c <= right; c += 1) {
        const raw = this.model.rawAt(this.sheetId, r, c)
        rawRow.push(raw)
        const value = raw === '' ? null : raw.startsWith('=') ? book.value(name, r, c) : parseLiteral(raw)
        const format = this.model.format(this.sheetId, this.rowIds()[r], this.colIds()[c])
        textRow.push(raw.startsWith('=') || format ? display(value, raw, format).text : raw)
      }
      raws.push(rawRow)
      texts.push(textRow)
    }
    const tsv = toTsv(texts)
    e.clipboardData.setData('text/plain', tsv)
    e.clipboardData.setData('text/html', `<table>${texts.map((row) => `<tr>${row.map((t) => `<td>${escapeHtml(t)}</td>`).join('')}</tr>`).join('')}</table>`)
    e.clipboardData.setData(CLIP_TYPE, JSON.stringify({ top, left, raws }))
    if (cut && !this.readOnly) this.model.clearRange(this.sheetId, top, left, bottom, right)
  }

  paste (e) {
    if (this.editing) return
    e.preventDefault()
    if (this.readOnly) return
    const { top, left } = this.range()
    let grid = null
    try {
      const data = JSON.parse(e.clipboardData.getData(CLIP_TYPE) || 'null')
      if (data && Array.isArray(data.raws)) {
        // Our own copy: formulas move with the paste (relative references follow).
        grid = data.raws.map((row) => row.map((raw) => moveFormula(String(raw), top - data.top, left - data.left)))
      }
    } catch {
      grid = null
    }
    if (!grid) {
      const text = e.clipboardData.getData('text/plain')
      if (!text) return
      grid = parseTsv(text)
    }
    this.pasteGrid(grid)
  }

  /** Write a grid of raw texts at the active cell and select it. */
  pasteGrid (grid) {
    if (this.readOnly || !grid.length) return
    const { top, left } = this.range()
    this.model.setRange(this.sheetId, top, left, grid)
    const width = grid.reduce((m, row) => Math.max(m, row.length), 1)
    this.schedule({ layout: true, data: true })
    this.flush()
    this.select(top, left, top + grid.length - 1, left + width - 1, false)
  }
}

function guessDecimals (value, raw, fmt) {
  if (fmt === 'percent' || fmt === 'currency' || fmt === 'number') return 2
  if (typeof value !== 'number') return 0
  const text = raw && !raw.startsWith('=') ? raw : formatNumber(value)
  const dot = text.indexOf('.')
  return dot < 0 ? 0 : Math.min(10, text.length - dot - 1)
}

function errorHelp (code) {
  return {
    '#REF!': 'A reference points at a cell or sheet that does not exist',
    '#DIV/0!': 'Division by zero',
    '#NAME?': 'Unknown function or name',
    '#CIRC!': 'Circular reference: the formula depends on itself',
    '#VALUE!': 'Wrong kind of value',
    '#N/A': 'Value not found',
    '#NUM!': 'Number out of range',
    '#ERROR!': 'The formula cannot be read'
  }[code] || code
}

/**
 * Mount the grid over a workbook document. Options: doc (Y.Doc), awareness, readOnly,
 * createSheet (default true: an editor opening an empty document adds "Sheet1").
 * Returns {model, grid, select(r, c, r2, c2), flush(), setStatus(text, state), destroy()}.
 */
export function mountGrid (container, { doc, awareness = null, readOnly = false, createSheet = true, title = null } = {}) {
  if (!container) throw new Error('mountGrid: no container')
  if (!doc) throw new Error('mountGrid: no document')
  const grid = new Grid(container, { doc, awareness, readOnly, createSheet, title })
  return {
    grid,
    model: grid.model,
    get sheetId () { return grid.sheetId },
    select: (r, c, r2, c2) => grid.select(r, c, r2 ?? r, c2 ?? c),
    switchSheet: (id) => grid.switchSheet(id),
    addSheet: () => grid.addSheet(),
    action: (name) => grid.action(name),
    pasteGrid: (rows) => grid.pasteGrid(rows),
    flush: () => grid.flush(),
    setStatus: (text, state) => {
      grid.status.hidden = false
      grid.status.textContent = text
      grid.status.dataset.state = state
    },
    destroy: () => grid.destroy()
  }
}

/** The Sheets page: connect the workbook's document (service "sheet"), then mount the grid. */
export async function mountSheetApp (el) {
  const docId = el.dataset.workbookId
  const canEdit = el.dataset.canEdit === 'true'
  el.classList.add('sg')
  el.replaceChildren(h('div', { class: 'sg-loading' }, 'Opening workbook…'))
  let mounted = null
  let last = null
  let resolveReady
  const ready = new Promise((resolve) => { resolveReady = resolve })
  // Only the leader saves, so only its "unsaved" means a save is pending.
  const label = (s) => (s.denied ? 'no access' : !s.online ? 'offline, edits kept' : s.state !== 'live' ? 'connecting…'
    : s.leader && s.unsaved ? 'saving…' : canEdit ? 'all changes saved' : 'live')
  const onStatus = (s) => {
    last = s
    if (s.synced || s.denied || !s.online) resolveReady()
    if (mounted) mounted.setStatus(label(s), s.state)
  }
  let mod
  try {
    mod = await import('/static/collab/connect.js')
  } catch (err) {
    el.replaceChildren(h('div', { class: 'sg-loading sg-failed' }, 'The sheet could not be loaded. Try again later.'))
    throw err
  }
  const conn = await mod.connectDocument({
    service: 'sheet', docId, canEdit, user: { name: el.dataset.userName, color: el.dataset.userColor }, onStatus
  })
  // An empty document may only be empty until the first sync: wait before adding "Sheet1".
  await Promise.race([ready, new Promise((resolve) => setTimeout(resolve, 4000))])
  el.replaceChildren()
  mounted = mountGrid(el, { doc: conn.doc, awareness: conn.awareness, readOnly: !canEdit, title: el.dataset.workbookName || null })
  // Fill the window below whatever the page puts above the grid.
  const fit = () => {
    const top = el.getBoundingClientRect().top + window.scrollY
    el.style.setProperty('--sg-height', `${Math.max(360, window.innerHeight - top - 12)}px`)
  }
  fit()
  window.addEventListener('resize', fit)
  if (last) mounted.setStatus(label(last), last.state)
  const app = { ...mounted, conn, destroy: () => { window.removeEventListener('resize', fit); mounted.destroy(); conn.destroy() } }
  window.sheetApp = app
  return app
}

export { checkSheetName }
