-- AlterTable
ALTER TABLE "Container" ADD COLUMN "keepUntil" DATETIME;

