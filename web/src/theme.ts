/**
 * Light and dark: the system's choice unless this browser picked one in the Network drawer's
 * Appearance setting (kept in localStorage, and applied by an inline script in index.html before
 * the first paint, so the page never flashes the other theme).
 */
import { byId } from './dom.js'

const STORAGE_KEY = 'p2p-rooms-demo:theme'
type ThemeChoice = 'system' | 'light' | 'dark'

export class Theme {
  private readonly select = byId<HTMLSelectElement>('theme-select')

  start (): void {
    this.select.value = this.stored()
    this.select.addEventListener('change', () => { this.apply(this.select.value as ThemeChoice) })
  }

  private stored (): ThemeChoice {
    try {
      const t = localStorage.getItem(STORAGE_KEY)
      return t === 'light' || t === 'dark' ? t : 'system'
    } catch {
      return 'system'
    }
  }

  private apply (choice: ThemeChoice): void {
    if (choice === 'system') delete document.documentElement.dataset.theme
    else document.documentElement.dataset.theme = choice
    try {
      if (choice === 'system') localStorage.removeItem(STORAGE_KEY)
      else localStorage.setItem(STORAGE_KEY, choice)
    } catch {}
  }
}
