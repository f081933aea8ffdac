// The workbook's Yjs model for the browser grid: the same contract as document.py (pycrdt).
//
// Root `sheets` = Map<sheetId, Map{name, index, rows, cols, cells, formats, widths}>: rows and
// cols map ids to base62 order keys, display order is (key, id) by plain string comparison;
// cells/formats are keyed "rowId:colId", so concurrent inserts never move anyone's data.
// Structural edits shift every formula of the workbook in the same transaction.

import { Y } from '/static/vendor/collab-editor.min.js'
import { Workbook, columnName, parseCell, shiftFormula, tokenize } from './formula.js'

export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'
export const NEW_SHEET_ROWS = 1000
export const NEW_SHEET_COLS = 52
const SHEET_NAME = /^[^'!\[\]*?/\\:]{1,100}$/
const FORMAT_KEYS = ['b', 'i', 'color', 'fmt', 'dp']

/** A random 10-character row, column or sheet id. */
export function newId () {
  let out = ''
  const bytes = new Uint8Array(16)
  while (out.length < 10) {
    crypto.getRandomValues(bytes)
    for (const byte of bytes) if (byte < 252 && out.length < 10) out += ID_ALPHABET[byte % 36]
  }
  return out
}

const digit = (char) => {
  const index = DIGITS.indexOf(char)
  if (index < 0) throw new Error(`order keys use only 0-9 A-Z a-z, not ${char}`)
  return index
}

/** An order key strictly between two keys (null: the start or the end); as key_between. */
export function keyBetween (before, after) {
  const low = before || ''
  if (after !== null && after !== undefined && !(low < after)) throw new Error(`no key between ${before} and ${after}`)
  const hasAfter = after !== null && after !== undefined
  let out = ''
  let i = 0
  for (;;) {
    const a = i < low.length ? digit(low[i]) : -1
    let b
    if (!hasAfter) b = DIGITS.length
    else if (i < after.length) b = digit(after[i])
    else throw new Error(`no key between ${before} and ${after}`)
    if (a === b) {
      out += DIGITS[a]
      i += 1
      continue
    }
    const mid = Math.floor((a + b) / 2)
    if (mid > a && mid > 0) return out + DIGITS[mid]
    if (a >= 0) return out + DIGITS[a] + keyBetween(low.slice(i + 1) || null, null)
    const rest = hasAfter && b === 0 ? after.slice(i + 1) : null
    return out + DIGITS[0] + keyBetween(null, rest)
  }
}

/** `count` increasing keys between two keys, bisecting so they stay short. */
export function keysBetween (before, after, count) {
  if (count <= 0) return []
  const mid = keyBetween(before, after)
  const half = Math.floor((count - 1) / 2)
  return [...keysBetween(before, mid, half), mid, ...keysBetween(mid, after, count - 1 - half)]
}

/** `count` increasing short keys spread evenly over the whole key space (as spread_keys). */
export function spreadKeys (count) {
  let width = 1
  while (DIGITS.length ** width <= count + 1) width += 1
  const space = DIGITS.length ** width
  const keys = []
  for (let n = 1; n <= count; n += 1) {
    let value = Math.floor((n * space) / (count + 1))
    let text = ''
    for (let k = 0; k < width; k += 1) {
      text = DIGITS[value % DIGITS.length] + text
      value = Math.floor(value / DIGITS.length)
    }
    keys.push(text.replace(/0+$/, ''))
  }
  return keys
}

const byKeyThenId = (x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)

/** Ids of an id -> order key map (Y.Map or Map) in display order: by (key, id). */
export function ordered (keys) {
  const pairs = []
  for (const [id, key] of keys.entries()) pairs.push([String(key), id])
  return pairs.sort(byKeyThenId).map((pair) => pair[1])
}

/** A valid sheet name, trimmed, or an Error thrown. */
export function checkSheetName (name) {
  const trimmed = String(name || '').trim()
  if (!SHEET_NAME.test(trimmed)) throw new Error("A sheet name is 1-100 characters without ' ! [ ] * ? / \\ :")
  return trimmed
}

/** A sheet name as a formula writes it: quoted when it is not a plain word. */
export const sheetRef = (name) => (/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name) && !/^[A-Za-z]{1,3}[0-9]+$/.test(name)
  ? name
  : `'${name.replaceAll("'", "''")}'`)

const cellKey = (rowId, colId) => `${rowId}:${colId}`

/** Parse an A1 text ("B3") to {row, col}, or null. */
export function parseA1 (text) {
  try {
    const cell = parseCell(String(text).replaceAll('$', ''))
    return { row: cell.row, col: cell.col }
  } catch {
    return null
  }
}

export const a1 = (row, col) => `${columnName(col)}${row + 1}`

/** Formula text moved by (dRow, dCol) as a copy/paste moves it: relative references follow. */
export function moveFormula (text, dRow, dCol) {
  if (!text.startsWith('=') || (dRow === 0 && dCol === 0)) return text
  let tokens
  try {
    tokens = tokenize(text.slice(1))
  } catch {
    return text
  }
  const body = text.slice(1)
  let out = ''
  let pos = 0
  const render = (text) => {
    const cell = parseCell(text)
    const row = cell.rowAbs ? cell.row : cell.row + dRow
    const col = cell.colAbs ? cell.col : cell.col + dCol
    if (row < 0 || col < 0) return null
    return (cell.colAbs ? '$' : '') + columnName(col) + (cell.rowAbs ? '$' : '') + String(row + 1)
  }
  for (const token of tokens) {
    if (token.kind !== 'ref') continue
    const bang = token.text.lastIndexOf('!')
    const prefix = bang >= 0 ? token.text.slice(0, bang + 1) : ''
    const parts = token.text.slice(bang + 1).split(':').map(render)
    const replacement = parts.includes(null) ? '#REF!' : prefix + parts.join(':')
    out += body.slice(pos, token.start) + replacement
    pos = token.end
  }
  return '=' + out + body.slice(pos)
}

/** The browser's model of one workbook document; every mutation is one transaction. */
export class SheetDoc {
  constructor (doc, { origin = null } = {}) {
    this.doc = doc
    this.origin = origin || { sheetDoc: true }
    this.root = doc.getMap('sheets')
    this.axisCache = new Map() // `${sheetId}:rows|cols` -> ordered ids
    this.cellCache = new Map() // sheetId -> {"r,c": raw}
    this.indexCache = new Map() // sheetId -> {rows, cols}: id -> position, as cellCache used
    this.book = null
    this.listeners = new Set()
    this.observer = (events, transaction) => {
      const changed = new Set()
      let structure = false
      const cellEvents = []
      for (const event of events) {
        const path = event.path
        if (path.length === 0) {
          structure = true
          for (const id of event.changes.keys.keys()) changed.add(id)
          continue
        }
        const sheetId = path[0]
        changed.add(sheetId)
        if (path.length === 1) {
          structure = true
          this.forget(sheetId)
        } else if (path[1] === 'rows' || path[1] === 'cols') {
          this.axisCache.delete(`${sheetId}:${path[1]}`)
          this.cellCache.delete(sheetId)
          this.book = null
        } else if (path[1] === 'cells') {
          cellEvents.push([sheetId, event])
        }
      }
      if (structure) {
        this.axisCache.clear()
        this.cellCache.clear()
        this.book = null
      } else {
        this.patchCells(cellEvents)
      }
      const local = transaction.origin === this.origin
      for (const listener of this.listeners) listener({ sheets: changed, structure, local, events })
    }
    this.root.observeDeep(this.observer)
  }

  destroy () {
    this.root.unobserveDeep(this.observer)
    this.listeners.clear()
  }

  onChange (listener) {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Apply cell edits to the cached positions and workbook instead of rebuilding them. */
  patchCells (cellEvents) {
    for (const [sheetId, event] of cellEvents) {
      const cells = this.cellCache.get(sheetId)
      const index = this.indexCache.get(sheetId)
      if (!cells || !index || !this.axisCache.has(`${sheetId}:rows`) || !this.axisCache.has(`${sheetId}:cols`)) {
        this.cellCache.delete(sheetId)
        this.book = null
        continue
      }
      const name = this.name(sheetId)
      for (const key of event.changes.keys.keys()) {
        const cut = key.indexOf(':')
        const r = index.rows.get(key.slice(0, cut))
        const c = index.cols.get(key.slice(cut + 1))
        if (r === undefined || c === undefined) continue
        const raw = event.target.get(key)
        const text = raw === null || raw === undefined ? '' : String(raw)
        if (text === '') delete cells[`${r},${c}`]
        else cells[`${r},${c}`] = text
        if (this.book) this.book.setCell(name, r, c, text)
      }
    }
  }

  forget (sheetId) {
    this.axisCache.delete(`${sheetId}:rows`)
    this.axisCache.delete(`${sheetId}:cols`)
    this.cellCache.delete(sheetId)
  }

  transact (fn) {
    let result
    this.doc.transact(() => { result = fn() }, this.origin)
    return result
  }

  // ---- reading ----

  sheet (sheetId) {
    const sheet = this.root.get(sheetId)
    return sheet instanceof Y.Map ? sheet : null
  }

  /** [{id, name, index}] in tab order. */
  sheets () {
    const list = []
    for (const [id, sheet] of this.root.entries()) {
      if (!(sheet instanceof Y.Map)) continue
      list.push({ id, name: String(sheet.get('name') ?? ''), index: String(sheet.get('index') ?? '') })
    }
    return list.sort((x, y) => byKeyThenId([x.index, x.id], [y.index, y.id]))
  }

  name (sheetId) {
    return String(this.sheet(sheetId)?.get('name') ?? '')
  }

  axis (sheetId, axis) {
    const cacheKey = `${sheetId}:${axis}`
    let ids = this.axisCache.get(cacheKey)
    if (!ids) {
      const keys = this.sheet(sheetId)?.get(axis)
      ids = keys instanceof Y.Map ? ordered(keys) : []
      this.axisCache.set(cacheKey, ids)
    }
    return ids
  }

  rowIds (sheetId) { return this.axis(sheetId, 'rows') }
  colIds (sheetId) { return this.axis(sheetId, 'cols') }

  cellsMap (sheetId) { return this.sheet(sheetId)?.get('cells') ?? null }

  raw (sheetId, rowId, colId) {
    const value = this.cellsMap(sheetId)?.get(cellKey(rowId, colId))
    return value === undefined || value === null ? '' : String(value)
  }

  rawAt (sheetId, row, col) {
    const rowId = this.rowIds(sheetId)[row]
    const colId = this.colIds(sheetId)[col]
    return rowId && colId ? this.raw(sheetId, rowId, colId) : ''
  }

  format (sheetId, rowId, colId) {
    const value = this.sheet(sheetId)?.get('formats')?.get(cellKey(rowId, colId))
    return value && typeof value === 'object' ? value : null
  }

  width (sheetId, colId) {
    const px = this.sheet(sheetId)?.get('widths')?.get(colId)
    return typeof px === 'number' && px > 0 ? px : null
  }

  /** The sheet's cells by position, {"row,col": raw}, as formula.js's Workbook takes them. */
  positionCells (sheetId) {
    let cells = this.cellCache.get(sheetId)
    if (cells) return cells
    cells = {}
    const rows = new Map(this.rowIds(sheetId).map((id, n) => [id, n]))
    const cols = new Map(this.colIds(sheetId).map((id, n) => [id, n]))
    this.indexCache.set(sheetId, { rows, cols })
    const map = this.cellsMap(sheetId)
    if (map) {
      for (const [key, raw] of map.entries()) {
        if (raw === null || raw === undefined || raw === '') continue
        const cut = key.indexOf(':')
        const r = rows.get(key.slice(0, cut))
        const c = cols.get(key.slice(cut + 1))
        if (r !== undefined && c !== undefined) cells[`${r},${c}`] = String(raw)
      }
    }
    this.cellCache.set(sheetId, cells)
    return cells
  }

  /** The workbook's formula engine over every sheet; values are computed lazily on demand. */
  workbook () {
    if (!this.book) {
      const sheets = {}
      for (const { id, name } of this.sheets()) if (!(name in sheets)) sheets[name] = this.positionCells(id)
      this.book = new Workbook(sheets)
    }
    return this.book
  }

  /** Computed value of a cell (number, string, boolean, null or CellError). */
  value (sheetId, row, col) {
    return this.workbook().value(this.name(sheetId), row, col)
  }

  // ---- sheets ----

  createSheet (name, { rows = NEW_SHEET_ROWS, cols = NEW_SHEET_COLS } = {}) {
    const clean = checkSheetName(name)
    const existing = this.sheets()
    if (existing.some((s) => s.name.toLowerCase() === clean.toLowerCase())) throw new Error(`A sheet named ${clean} already exists`)
    const last = existing.reduce((max, s) => (max === null || s.index > max ? s.index : max), null)
    const id = newId()
    this.transact(() => {
      const sheet = new Y.Map()
      this.root.set(id, sheet)
      sheet.set('name', clean)
      sheet.set('index', keyBetween(last || null, null))
      for (const [axis, count] of [['rows', rows], ['cols', cols]]) {
        const map = new Y.Map()
        sheet.set(axis, map)
        for (const key of spreadKeys(count)) map.set(newId(), key)
      }
      for (const part of ['cells', 'formats', 'widths']) sheet.set(part, new Y.Map())
    })
    return id
  }

  /** The first sheet, creating "Sheet1" when the workbook has none. */
  ensureSheet () {
    const first = this.sheets()[0]
    return first ? first.id : this.createSheet('Sheet1')
  }

  nextSheetName () {
    const taken = new Set(this.sheets().map((s) => s.name.toLowerCase()))
    for (let n = this.sheets().length + 1; ; n += 1) if (!taken.has(`sheet${n}`)) return `Sheet${n}`
  }

  /** Rename a sheet and rewrite every formula that refers to it by its old name. */
  renameSheet (sheetId, name) {
    const clean = checkSheetName(name)
    const old = this.name(sheetId)
    if (this.sheets().some((s) => s.id !== sheetId && s.name.toLowerCase() === clean.toLowerCase())) {
      throw new Error(`A sheet named ${clean} already exists`)
    }
    if (old === clean) return
    this.transact(() => {
      this.sheet(sheetId).set('name', clean)
      this.eachFormula((cells, key, raw) => {
        const renamed = renameRefs(raw, old, clean)
        if (renamed !== raw) cells.set(key, renamed)
      })
    })
  }

  deleteSheet (sheetId) {
    if (this.sheets().length <= 1) throw new Error('A workbook keeps at least one sheet')
    this.transact(() => this.root.delete(sheetId))
  }

  eachFormula (fn) {
    for (const { id, name } of this.sheets()) {
      const cells = this.cellsMap(id)
      if (!cells) continue
      for (const [key, raw] of [...cells.entries()]) if (typeof raw === 'string' && raw.startsWith('=')) fn(cells, key, raw, name, id)
    }
  }

  // ---- cells ----

  /** Ids of the first `count` rows/cols, appending new ones (keys after the last) as needed. */
  extend (sheetId, axis, count) {
    const ids = [...this.axis(sheetId, axis)]
    if (ids.length >= count) return ids
    const map = this.sheet(sheetId).get(axis)
    let last = ids.reduce((max, id) => {
      const key = String(map.get(id))
      return max === null || key > max ? key : max
    }, null)
    while (ids.length < count) {
      last = keyBetween(last, null)
      const id = newId()
      map.set(id, last)
      ids.push(id)
    }
    return ids
  }

  /** Write raw texts with their top-left at (top, left), growing the sheet; "" clears. */
  setRange (sheetId, top, left, grid) {
    const width = grid.reduce((max, row) => Math.max(max, row.length), 0)
    return this.transact(() => {
      const rowIds = this.extend(sheetId, 'rows', top + grid.length)
      const colIds = this.extend(sheetId, 'cols', left + width)
      const cells = this.cellsMap(sheetId)
      let written = 0
      grid.forEach((row, r) => row.forEach((raw, c) => {
        const key = cellKey(rowIds[top + r], colIds[left + c])
        const text = raw === null || raw === undefined ? '' : String(raw)
        if (text === '') {
          if (cells.has(key)) { cells.delete(key); written += 1 }
        } else if (cells.get(key) !== text) {
          cells.set(key, text)
          written += 1
        }
      }))
      return written
    })
  }

  /** Set one cell by its row and column ids (where it is now, whatever moved meanwhile). */
  setRaw (sheetId, rowId, colId, raw) {
    const cells = this.cellsMap(sheetId)
    const key = cellKey(rowId, colId)
    const text = raw === null || raw === undefined ? '' : String(raw)
    if (text === (cells.get(key) ?? '')) return 0
    this.transact(() => (text === '' ? cells.delete(key) : cells.set(key, text)))
    return 1
  }

  setCell (sheetId, row, col, raw) {
    return this.setRange(sheetId, row, col, [[raw]])
  }

  /** Clear the contents of a rectangle (formats stay, as Delete does in a spreadsheet). */
  clearRange (sheetId, top, left, bottom, right) {
    const rowIds = this.rowIds(sheetId).slice(top, bottom + 1)
    const colIds = this.colIds(sheetId).slice(left, right + 1)
    const cells = this.cellsMap(sheetId)
    this.transact(() => {
      for (const r of rowIds) for (const c of colIds) if (cells.has(cellKey(r, c))) cells.delete(cellKey(r, c))
    })
  }

  /** Merge `patch` into the formats of a rectangle; a null/false/undefined value removes that key. */
  setFormat (sheetId, top, left, bottom, right, patch) {
    const rowIds = this.rowIds(sheetId).slice(top, bottom + 1)
    const colIds = this.colIds(sheetId).slice(left, right + 1)
    const formats = this.sheet(sheetId).get('formats')
    this.transact(() => {
      for (const r of rowIds) {
        for (const c of colIds) {
          const key = cellKey(r, c)
          const next = { ...(formats.get(key) || {}) }
          for (const name of FORMAT_KEYS) {
            if (!(name in patch)) continue
            if (patch[name] === null || patch[name] === false || patch[name] === undefined) delete next[name]
            else next[name] = patch[name]
          }
          if (Object.keys(next).length) formats.set(key, next)
          else if (formats.has(key)) formats.delete(key)
        }
      }
    })
  }

  setWidth (sheetId, colIds, px) {
    const widths = this.sheet(sheetId).get('widths')
    this.transact(() => { for (const id of colIds) widths.set(id, Math.max(20, Math.min(2000, Math.round(px)))) })
  }

  // ---- structure ----

  /** Shift every formula of the workbook for `count` rows/cols inserted (> 0) or deleted (< 0) at `at`. */
  shiftAll (sheetId, axis, at, count) {
    const target = this.name(sheetId)
    this.eachFormula((cells, key, raw, home) => {
      const shifted = shiftFormula(raw, target, axis === 'rows' ? 'row' : 'col', at, count, home)
      if (shifted !== raw) cells.set(key, shifted)
    })
  }

  /** Insert `count` rows or cols (axis "rows" | "cols") before position `at`; returns their ids. */
  insert (sheetId, axis, at, count = 1) {
    return this.transact(() => {
      const ids = this.axis(sheetId, axis)
      const map = this.sheet(sheetId).get(axis)
      at = Math.max(0, Math.min(at, ids.length))
      const before = at > 0 ? String(map.get(ids[at - 1])) : null
      let after = at < ids.length ? String(map.get(ids[at])) : null
      if (before !== null && after !== null && !(before < after)) {
        // Neighbours share a key (concurrent inserts): re-key the rest of the tie group after us.
        const next = ids.slice(at).find((id) => String(map.get(id)) > before)
        const limit = next ? String(map.get(next)) : null
        const tied = ids.slice(at, next ? ids.indexOf(next) : ids.length)
        const keys = keysBetween(before, limit, tied.length + 1)
        tied.forEach((id, n) => map.set(id, keys[n + 1]))
        after = keys[1]
      }
      this.shiftAll(sheetId, axis, at, count)
      const added = keysBetween(before, after, count).map((key) => {
        const id = newId()
        map.set(id, key)
        return id
      })
      return added
    })
  }

  /** Delete `count` rows or cols from position `at` (a sheet keeps at least one of each). */
  remove (sheetId, axis, at, count = 1) {
    const ids = this.axis(sheetId, axis)
    count = Math.min(count, ids.length - at, ids.length - 1)
    if (count <= 0) return []
    const gone = ids.slice(at, at + count)
    this.transact(() => {
      this.shiftAll(sheetId, axis, at, -count)
      const sheet = this.sheet(sheetId)
      const map = sheet.get(axis)
      const goneSet = new Set(gone)
      for (const id of gone) map.delete(id)
      for (const part of ['cells', 'formats']) {
        const cells = sheet.get(part)
        for (const key of [...cells.keys()]) {
          const [rowId, colId] = key.split(':')
          if (goneSet.has(axis === 'rows' ? rowId : colId)) cells.delete(key)
        }
      }
      if (axis === 'cols') for (const id of gone) sheet.get('widths').delete(id)
    })
    return gone
  }
}

/** Formula text with references to sheet `old` renamed to `name`. */
function renameRefs (text, old, name) {
  let tokens
  try {
    tokens = tokenize(text.slice(1))
  } catch {
    return text
  }
  const body = text.slice(1)
  let out = ''
  let pos = 0
  for (const token of tokens) {
    if (token.kind !== 'ref' || token.sheet === null || token.sheet.toLowerCase() !== old.toLowerCase()) continue
    out += body.slice(pos, token.start) + sheetRef(name) + token.text.slice(token.text.lastIndexOf('!'))
    pos = token.end
  }
  return '=' + out + body.slice(pos)
}
