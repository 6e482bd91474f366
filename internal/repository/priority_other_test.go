//go:build !linux

package repository

func threadNice() int { return 0 }
